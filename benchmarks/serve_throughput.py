"""`medtk serve` throughput and latency, through C-STORE and through HTTP, against bare predict loops.

    .venv/bin/python benchmarks/serve_throughput.py [--images 100] [--repeats 3] [--workers 2] [--threads T]

Model: ResNet50 224x224x1 int8 (weights none: latency does not depend on weight values), the one
benchmarks/runtime_overhead.py builds and caches under benchmarks/.cache/. Inputs: `--images` CR
DICOM files, 512x512 8-bit, made from PneumoniaMNIST test images.

- bare: `Classifier("...").predict(path)` over the DICOM files in this process, one loop with every
  usable CPU (decode, preprocess, interpreter, CAM): what an integrator gets without the node.
- bare, BLAS on one thread: the same loop with numpy's and OpenCV's OpenBLAS limited to one thread
  (threadpoolctl), as the node runs them (serve/native_threads.py). By default their idle threads
  spin-wait after each CAM upsampling product and take cores from the interpreter's threads.
- bare side by side: `--workers` such loops in threads, each on its own interpreter with `--threads`
  threads (default: the CPUs divided among them), which is how the node runs the model: the ceiling
  for the node's own layout.
- C-STORE: dcmtk's storescu sends every file over one association to a `medtk serve` subprocess (no
  --forward; `--workers`, `--threads`); the clock stops when the last result (SR + SC) is in the
  outbox. Latency per image = its SR file's mtime - the moment storescu printed "Sending file" for it
  (both on this machine's clock).
- the node's processing alone: the same files admitted into a new spool (as acknowledged C-STOREs are),
  then a second node started on it works through them as after a restart, with no DICOM or HTTP at all;
  timed from its tenth result to its last (its start-up left out). What C-STORE would reach if receiving
  the images cost nothing, so the gap to the bare loop splits into receiving and the node's own work.
- HTTP: `--clients` concurrent clients (each: a keep-alive httpx session) POST the same files as
  application/dicom; latency per request. A client waits for each answer, so the node is kept busy
  only with more clients than workers; the table has 2 and `--clients` (default 4).
- small C-STOREs acknowledged: storescu sends `--images` 64x64 CR files to the same node; images/s
  is files / storescu's run time (processing goes on after). Per C-STORE round trip, where a sender
  with Nagle on meets a receiver's delayed ACK (serve/tcp.py).
- into the PACS: a second node with `--forward` to an Orthanc on loopback (both on this machine's
  CPUs); storescu sends the 512x512 files; the clock stops when Orthanc holds both results of every
  image (its /statistics, polled every 20 ms). Runs after the rest, `--repeats` times.

Each mode runs `--repeats` times alternating; reported: median images/s with [min, max] over the
repeats, p50/p99 latency pooled over the repeats, and CPU per image (the bare loops' process, or the
node process over the run: every thread, receiving and writing included), which a shared machine's
load disturbs far less than images/s; the node's RSS (peak sampled while running).
Writes the section "## medtk serve" of benchmarks/RESULTS.md (other sections untouched; the reading of the
figures is the next section, written by hand).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## medtk serve"
sys.path[:0] = [str(HERE), str(REPO)]


def make_inputs(folder: Path, count: int, side: int = 512) -> list[Path]:
    import cv2
    from tests.serve.serve_helpers import radiograph

    data = np.load(REPO.parent / "shared" / "data" / "pneumoniamnist.npz")
    images = data["test_images"][:count]
    files = []
    for i, image in enumerate(images):
        big = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
        path = folder / f"cr{side}_{i:04d}.dcm"
        radiograph(big, number=i + 1).save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def bare(model: Path, files: list[Path], loops: int = 1, threads: int | None = None) -> tuple[float, list[float]]:
    """`loops` predict loops side by side (threads), each with its own interpreter of `threads` threads."""
    from medtk.runtime import Classifier

    first = Classifier(model, num_threads=threads)
    classifiers = [first, *(first.replica() for _ in range(loops - 1))]
    for classifier in classifiers:
        classifier.predict(files[0])
    latencies: list[float] = []
    lock = threading.Lock()

    def loop(classifier, part: list[Path]) -> None:
        for path in part:
            t = time.perf_counter()
            classifier.predict(path)
            with lock:
                latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(loops) as pool:
        list(pool.map(loop, classifiers, [files[i::loops] for i in range(loops)]))
    return len(files) / (time.perf_counter() - start), latencies


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.done.wait(0.05)


def node_cpu(node) -> float:
    """Seconds of CPU the node process has used (every thread)."""
    import psutil

    times = psutil.Process(node.process.pid).cpu_times()
    return times.user + times.system


def cpu_per_image(run, count: int, clock) -> tuple[float, list[float], float]:
    """`run()`'s (images/s, latencies) and the CPU ms per image `clock` (seconds) counted meanwhile."""
    before = clock()
    rate, latencies = run()
    return rate, latencies, (clock() - before) / count * 1000.0


def storescu(node, files: list[Path], *flags: str) -> list[str]:
    """dcmtk's storescu sending `files` over one association to the node, as a modality would."""
    return ["storescu", *flags, "-aet", "BENCH", "-aec", "MEDTK", "127.0.0.1", str(node.dicom_port), *map(str, files)]


def fresh_uids(files: list[Path]) -> dict[str, str]:
    """New SOP Instance UIDs in every file (so every run produces new results): file name -> UID."""
    import pydicom

    uids = {}
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(path, enforce_file_format=True)
        uids[path.name] = ds.SOPInstanceUID
    return uids


def through_cstore(node, files: list[Path], model_sha: str) -> tuple[float, list[float]]:
    """dcmtk's storescu sends every file over one association, as a modality would."""
    import subprocess

    from medtk.serve.uids import result_uid

    uids = fresh_uids(files)
    outbox = node.spool / "outbox"
    sent = {}
    start = time.time()
    command = storescu(node, files, "-v")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as sender:
        for line in sender.stdout:  # "I: Sending file: /path/cr_0001.dcm", stamped as it is printed
            if "Sending file:" in line:
                sent[uids[Path(line.split("Sending file:")[1].strip()).name]] = time.time()
    if sender.returncode != 0 or len(sent) != len(files):
        raise RuntimeError(f"storescu failed ({sender.returncode}), {len(sent)} of {len(files)} sent")
    expected = {uid: outbox / f"{result_uid(uid, model_sha, 'sr')}.dcm" for uid in sent}
    sc = [outbox / f"{result_uid(uid, model_sha, 'sc')}.dcm" for uid in sent]
    remaining = [*expected.values(), *sc]
    while remaining:  # cheap: only the files still missing are looked at, so polling takes no CPU from the node
        remaining = [p for p in remaining if not p.exists()] if remaining[0].exists() else remaining
        time.sleep(0.02)
    finished = max(max(p.stat().st_mtime for p in expected.values()), max(p.stat().st_mtime for p in sc))
    latencies = [expected[uid].stat().st_mtime - sent[uid] for uid in sent]
    return len(files) / (finished - start), latencies


def acknowledged(node, files: list[Path], model_sha: str) -> float:
    """C-STOREs acknowledged per second: storescu sends every file over one association and exits. Then
    (untimed) waits until the node has processed them, so they do not run into the next measurement."""
    import subprocess

    from medtk.serve.uids import result_uid

    uids = fresh_uids(files)
    start = time.perf_counter()
    subprocess.run(storescu(node, files), check=True, capture_output=True)
    rate = len(files) / (time.perf_counter() - start)
    remaining = [node.spool / "outbox" / f"{result_uid(uid, model_sha, kind)}.dcm" for uid in uids.values()
                 for kind in ("sr", "sc")]
    while remaining:
        remaining = [p for p in remaining if not p.exists()]
        time.sleep(0.05)
    return rate


def into_pacs(node, pacs, files: list[Path]) -> float:
    """Images/s from the first C-STORE until both results of every image are in the PACS (`--forward`)."""
    import subprocess

    fresh_uids(files)
    before = len(pacs.instances())
    start = time.perf_counter()
    subprocess.run(storescu(node, files), check=True, capture_output=True)
    deadline = start + 600
    while pacs.get("/statistics")["CountInstances"] < before + 2 * len(files):
        if time.perf_counter() > deadline:
            raise RuntimeError("the results did not all reach the PACS within 10 minutes")
        time.sleep(0.02)
    return len(files) / (time.perf_counter() - start)


def from_the_spool(model: Path, files: list[Path], folder: Path, node_args: tuple[str, ...]) -> tuple[float, float]:
    """The node's processing alone: `files` admitted into a new spool (as acknowledged C-STOREs would be),
    then a node started on it works through them as after a restart. Images/s and node CPU ms per image
    between the 10th result and the last (the node's start-up left out); no DICOM or HTTP at all."""
    import psutil
    from tests.serve.serve_helpers import NodeProcess, free_port

    from medtk.serve.spool import Spool

    spool = Spool(folder)
    uids = fresh_uids(files)
    for path in files:
        spool.admit(uids[path.name], path)
    node = NodeProcess(model, folder, folder.parent / f"{folder.name}.log", free_port(), free_port(), args=node_args)
    first = max(1, len(files) // 10)
    node.start()
    try:
        process = psutil.Process(node.process.pid)
        marks = []
        for wanted in (first, len(files)):
            while len(os.listdir(spool.outbox)) < 2 * wanted:  # SR + SC per image
                time.sleep(0.02)
            times = process.cpu_times()
            marks.append((time.perf_counter(), times.user + times.system))
    finally:
        node.stop()
    (start, cpu_start), (end, cpu_end) = marks
    count = len(files) - first
    return count / (end - start), (cpu_end - cpu_start) / count * 1000.0


def through_http(node, files: list[Path], clients: int = 2) -> tuple[float, list[float]]:
    import httpx

    url = f"http://127.0.0.1:{node.http_port}/v1/predict"
    bodies = [p.read_bytes() for p in files]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(part: list[bytes]) -> None:
        with httpx.Client(timeout=60) as session:
            for body in part:
                t = time.perf_counter()
                response = session.post(url, content=body, headers={"Content-Type": "application/dicom"})
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
                with lock:
                    latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [bodies[i::clients] for i in range(clients)]))
    return len(files) / (time.perf_counter() - start), latencies


def _ratio_range(runs: list[tuple], bare_runs: list[tuple]) -> str:
    ratios = [run[0] / bare[0] for run, bare in zip(runs, bare_runs)]
    return f"{min(ratios):.2f}x-{max(ratios):.2f}x"


def _spread(rates: list[float]) -> str:
    return f"{statistics.median(rates):.1f} [{min(rates):.1f}, {max(rates):.1f}]"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="the node's workers (interpreters)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (besides a run with 2)")
    parser.add_argument("--threads", type=int, default=None, help="threads per interpreter [CPUs / workers]")
    args = parser.parse_args()
    from medtk.runtime.backend import default_threads

    args.given_threads = args.threads is not None
    args.threads = args.threads or max(1, default_threads() // args.workers)

    from runtime_overhead import build_models
    from tests.serve.serve_helpers import NodeProcess, Orthanc, free_port

    from medtk.runtime import Classifier
    from medtk.serve.identity import ModelIdentity

    model = build_models()["int8"]
    identity = ModelIdentity.of(Classifier(model, num_threads=1))
    work = Path(tempfile.mkdtemp(prefix="serve_bench_"))
    try:
        files = make_inputs(work, args.images)
        small = make_inputs(work, args.images, side=64)
        node_args = ("--threads", str(args.threads), "--workers", str(args.workers),
                     "--queue-size", str(args.images + 8), "--log-level", "WARNING")
        node = NodeProcess(model, work / "spool", work / "node.log", free_port(), free_port(), args=node_args)
        node.start()
        sampler = RssSampler(node.process.pid)
        sampler.start()
        runs: dict[str, list[tuple[float, list[float], float]]] = {"bare": [], "bare1": [], "side": [], "cstore": [],
                                                                   "spool": [], "http2": [], "http": []}
        from threadpoolctl import threadpool_limits

        def one_blas_thread() -> tuple[float, list[float]]:
            with threadpool_limits(limits=1, user_api="blas"):
                return bare(model, files)

        here, there = time.process_time, lambda: node_cpu(node)
        count = len(files)
        network: dict[str, list[float]] = {"acknowledged": [], "pacs": []}
        try:
            through_http(node, files[:4])  # warm the node (first SR build imports, interpreter arena)
            for repeat in range(args.repeats):
                runs["bare"].append(cpu_per_image(lambda: bare(model, files), count, here))
                runs["bare1"].append(cpu_per_image(one_blas_thread, count, here))
                runs["side"].append(cpu_per_image(lambda: bare(model, files, args.workers, args.threads), count, here))
                runs["cstore"].append(cpu_per_image(lambda: through_cstore(node, files, identity.file_sha256), count, there))
                rate, cpu = from_the_spool(model, files, work / f"spool-only-{repeat}", node_args)
                runs["spool"].append((rate, [], cpu))
                runs["http2"].append(cpu_per_image(lambda: through_http(node, files, 2), count, there))
                runs["http"].append(cpu_per_image(lambda: through_http(node, files, args.clients), count, there))
                network["acknowledged"].append(acknowledged(node, small, identity.file_sha256))
                print(f"repeat {repeat + 1} (load {os.getloadavg()[0]:.1f}): "
                      + ", ".join(f"{k} {v[-1][0]:.1f} img/s {v[-1][2]:.1f} ms CPU" for k, v in runs.items())
                      + f", small C-STOREs acknowledged {network['acknowledged'][-1]:.1f}/s")
            rss_end = node.rss_bytes()
        finally:
            sampler.done.set()
            node.stop()
        pacs = Orthanc(work / "orthanc", http_port=free_port(), dicom_port=free_port()).start()
        forwarding = NodeProcess(model, work / "spool-forward", work / "node-forward.log", free_port(), free_port(),
                                 args=("--threads", str(args.threads), "--workers", str(args.workers), "--queue-size",
                                       str(args.images + 8), "--log-level", "WARNING", "--forward", pacs.destination))
        try:
            forwarding.start()
            for repeat in range(args.repeats):
                network["pacs"].append(into_pacs(forwarding, pacs, files))
                print(f"repeat {repeat + 1}: into the PACS {network['pacs'][-1]:.1f} img/s")
        finally:
            forwarding.stop()
            pacs.stop()
        write_results(args, runs, network, sampler.peak, rss_end)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0



def cpu_flags() -> str:
    """The vector and matrix extensions LiteRT's kernels may use, as `grep -o -w ... /proc/cpuinfo | sort -u`."""
    import re

    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " ".join(sorted({flag for flag in re.findall(r"\w+", text) if flag in wanted})) or "unknown"


def write_results(args, runs, network: dict[str, list[float]], rss_peak: int, rss_end: int) -> None:
    from medtk.runtime.backend import default_threads

    bare_median = statistics.median(r[0] for r in runs["bare"])
    side_median = statistics.median(r[0] for r in runs["side"])
    rows = []
    names = {"bare": f"bare `Classifier.predict(path)` loop, 1 x {default_threads()} threads",
             "bare1": "the same, BLAS on one thread (as in the node)",
             "side": f"bare loops side by side, {args.workers} x {args.threads} threads",
             "cstore": "C-STORE (storescu) -> SR + SC in the outbox",
             "spool": "the node's processing alone: instances already in its spool -> SR + SC in the outbox",
             "http2": "HTTP POST /v1/predict (2 clients)",
             "http": f"HTTP POST /v1/predict ({args.clients} clients)"}
    for key, label in names.items():
        rates = [r[0] for r in runs[key]]
        pooled = [lat for r in runs[key] for lat in r[1]]
        median = statistics.median(rates)
        cpu = [r[2] for r in runs[key]]
        p50, p99 = (f"{percentile(pooled, 50):.1f}", f"{percentile(pooled, 99):.1f}") if pooled else ("-", "-")
        rows.append(f"| {label} | {median:.1f} [{min(rates):.1f}, {max(rates):.1f}] | {median / bare_median:.2f}x | "
                    f"{median / side_median:.2f}x | {p50} | {p99} | "
                    f"{statistics.median(cpu):.1f} [{min(cpu):.1f}, {max(cpu):.1f}] |")
    command = (f".venv/bin/python benchmarks/serve_throughput.py --images {args.images} --repeats {args.repeats} "
               f"--workers {args.workers} --clients {args.clients}" + (f" --threads {args.threads}" if args.given_threads else ""))
    section = "\n".join([
        HEADING,
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end), "
        f"Python {platform.python_version()}:",
        "",
        "    " + command,
        "",
        f"ResNet50 224x224x1 int8, {args.images} CR DICOM files (512x512, from PneumoniaMNIST), "
        f"node workers {args.workers} x interpreter threads {args.threads}; images/s is the median over "
        f"{args.repeats} repeats [min, max]; latencies pooled over the repeats.",
        "",
        "| path | images/s | vs bare loop | vs bare side by side | p50 ms | p99 ms | CPU ms per image |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Each path against the bare loop of the same repeat (run-to-run spread of the ratio): C-STORE "
        f"{_ratio_range(runs['cstore'], runs['bare'])} (against the loop with BLAS on one thread "
        f"{_ratio_range(runs['cstore'], runs['bare1'])}), the node's processing alone "
        f"{_ratio_range(runs['spool'], runs['bare'])}, HTTP with 2 clients {_ratio_range(runs['http2'], runs['bare'])}, "
        f"with {args.clients} {_ratio_range(runs['http'], runs['bare'])}.",
        "",
        f"Node RSS: peak {rss_peak / 2**20:.0f} MiB, {rss_end / 2**20:.0f} MiB at the end.",
        "",
        f"CPU flags: {cpu_flags()}.",
        "",
        "DICOM network, same node and repeats (dcmtk's storescu and Orthanc as Debian packages them: Nagle on):",
        "",
        "| path | images/s |",
        "|---|---|",
        f"| storescu -> node, {args.images} CR 64x64: C-STOREs acknowledged | {_spread(network['acknowledged'])} |",
        f"| storescu -> node `--forward` Orthanc: both results of every image in the PACS | {_spread(network['pacs'])} |",
        "",
        "What these figures mean, and how they moved, is in the next section (which this script leaves alone).",
        "",
    ])
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if HEADING in text:
        before, _, rest = text.partition(HEADING)
        following = rest.find("\n## ")
        text = before + section + ("\n" + rest[following + 1:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
