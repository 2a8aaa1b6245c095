"""`medtk predict --data` throughput against a bare `Classifier` loop, and Ray runs that must give the same rows.

    .venv/bin/python benchmarks/batch_inference.py [--images 100] [--repeats 3] [--workers 2] [--no-ray]

Model: ResNet50 224x224x1 int8 (weights none), the one benchmarks/runtime_overhead.py builds and caches.
Inputs: `--images` CR DICOM files, 512x512 8-bit, from PneumoniaMNIST test images (serve_throughput.py's).

- bare loop: `Classifier(model).predict(path)` over the files in this process with every usable CPU, as
  an integrator writes it (the model loaded beforehand, nothing written); and the same loop with numpy's
  and OpenCV's BLAS on one thread, as the pool runs them (serve/native_threads.py says why that matters).
- local pool: `run_batch` (what `medtk predict MODEL --data DIR --out RESULTS --workers W` runs), timed
  whole: listing the folder, loading the model and its replicas, predicting, writing the Parquet parts.
- Both alternate `--repeats` times; reported: median images/s [min, max], the pool / loop ratio per
  repeat (its spread), and CPU seconds per image of this process (less disturbed by a shared machine).

Then, unless `--no-ray`: a two-node Ray cluster on this machine (`ray start --head --num-cpus 1` and a
second `ray start --address ... --num-cpus 1`), the same job through `--ray ADDRESS` (rows must equal the
local pool's), and again with one Ray actor process killed (SIGKILL) once the first rows are in: every
row must be there exactly once, equal to the local pool's. `ray stop` at the end, whatever happened.
Writes the section "## Batch inference (issue 24)" of benchmarks/RESULTS.md (other sections untouched).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## Batch inference (issue 24)"
sys.path[:0] = [str(HERE), str(REPO)]
RAY = Path(sys.executable).parent / "ray"


def bare_loop(model: Path, files: list[Path], blas_one_thread: bool = False) -> tuple[float, float]:
    """(images/s, CPU s per image) of one `Classifier` with every usable CPU over the files; optionally with
    numpy's and OpenCV's BLAS on one thread, as the pool runs them."""
    from contextlib import nullcontext

    from medtk.batch.local import single_threaded_blas
    from medtk.runtime import Classifier

    classifier = Classifier(model)
    classifier.predict(files[0])
    with single_threaded_blas() if blas_one_thread else nullcontext():
        cpu, start = time.process_time(), time.perf_counter()
        for path in files:
            classifier.predict(path)
        return len(files) / (time.perf_counter() - start), (time.process_time() - cpu) / len(files)


def local_pool(model: Path, folder: Path, out: Path, workers: int) -> tuple[float, float]:
    from medtk.batch.job import BatchOptions, run_batch

    shutil.rmtree(out, ignore_errors=True)
    cpu, start = time.process_time(), time.perf_counter()
    summary = run_batch(model, str(folder), out, BatchOptions(workers=workers))
    elapsed = time.perf_counter() - start
    return summary.rows / elapsed, (time.process_time() - cpu) / summary.rows


def rows(results: Path) -> list[dict]:
    import pyarrow.parquet as pq

    from medtk.batch.store import part_files

    found = [row for part in part_files(results) for row in pq.read_table(part).to_pylist()]
    return sorted(found, key=lambda row: row["source_id"])


def two_node_cluster(port: int) -> str:
    """Two raylets of 1 CPU each on this machine. The head turns Ray's token authentication on (its token in
    ~/.ray/auth_token); the second node and the driver must then say RAY_AUTH_MODE=token to present it."""
    os.environ["RAY_AUTH_MODE"] = "token"
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([str(RAY), "start", "--head", "--port", str(port), "--include-dashboard=false", *common],
                   check=True, capture_output=True)
    subprocess.run([str(RAY), "start", "--address", address, *common], check=True, capture_output=True)
    return address


def kill_one_actor_when(results: Path, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL one Ray Data actor process once the first part is committed."""
    import psutil

    from medtk.batch.store import part_files

    while not stop.is_set() and not part_files(results):
        time.sleep(0.05)
    for process in psutil.process_iter(["pid", "cmdline"]):
        if "MapWorker" in " ".join(process.info["cmdline"] or []):
            os.kill(process.info["pid"], signal.SIGKILL)
            killed.append(process.info["pid"])
            return


def on_ray(model: Path, folder: Path, out: Path, address: str, kill: bool) -> tuple[float, list[int]]:
    from medtk.batch.job import BatchOptions, run_batch

    shutil.rmtree(out, ignore_errors=True)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_one_actor_when, args=(out, stop, killed), daemon=True)
    if kill:
        killer.start()
    start = time.perf_counter()
    summary = run_batch(model, str(folder), out, BatchOptions(workers=2, ray=address, rows_per_part=10))
    elapsed = time.perf_counter() - start
    stop.set()
    return summary.rows / elapsed, killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    from runtime_overhead import build_models
    from serve_throughput import cpu_flags, make_inputs

    model = build_models()["int8"]
    work = Path(tempfile.mkdtemp(prefix="batch_bench_"))
    load_before = os.getloadavg()
    try:
        folder = work / "archive"
        folder.mkdir()
        files = make_inputs(folder, args.images)
        bare, bare_blas1, pool = [], [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(model, files))
            bare_blas1.append(bare_loop(model, files, blas_one_thread=True))
            pool.append(local_pool(model, folder, work / "local.parquet", args.workers))
        ray_lines = []
        if not args.no_ray:
            try:
                ray_lines = ray_checks(model, folder, work)
            except Exception as error:  # the local figures above still get written, with what failed
                ray_lines = [f"- the Ray checks FAILED: {type(error).__name__}: {str(error).splitlines()[0]}"]
        write_results(args, bare, bare_blas1, pool, ray_lines, cpu_flags(), load_before, os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def ray_checks(model: Path, folder: Path, work: Path) -> list[str]:
    reference = rows(work / "local.parquet")
    try:
        address = two_node_cluster(6390)
        rate, _ = on_ray(model, folder, work / "ray.parquet", address, kill=False)
        same = rows(work / "ray.parquet") == reference
        rate_killed, killed = on_ray(model, folder, work / "ray_killed.parquet", address, kill=True)
        after_kill = rows(work / "ray_killed.parquet")
        ids = [row["source_id"] for row in after_kill]
        once = len(ids) == len(set(ids)) == len(reference)
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True)
    return [
        f"- two-node cluster (`ray start --head --num-cpus 1` + `ray start --address ... --num-cpus 1`), "
        f"`--ray {address}`, 2 actors: {rate:.1f} images/s (whole job, cluster already up); rows identical to the "
        f"local pool's: **{'yes' if same else 'NO'}**",
        f"- the same with one actor process SIGKILLed after the first part ({len(killed)} killed, pid "
        f"{killed[0] if killed else '-'}): {rate_killed:.1f} images/s; every row exactly once: **{'yes' if once else 'NO'}**, "
        f"equal to the local pool's: **{'yes' if after_kill == reference else 'NO'}**",
    ]


def write_results(args, bare, bare_blas1, pool, ray_lines, flags, load_before, load_after) -> None:
    def cell(values):
        return f"{statistics.median(values):.1f} [{min(values):.1f}, {max(values):.1f}]"

    ratios = [p[0] / b[0] for b, p in zip(bare, pool)]
    ratios_blas1 = [p[0] / b[0] for b, p in zip(bare_blas1, pool)]
    lines = [
        HEADING, "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.1f} before and {load_after[0]:.1f} after (the machine is shared: "
        f"{'UNDER LOAD, ratios are noisy' if max(load_before[0], load_after[0]) > os.cpu_count() else 'near idle'}):", "",
        f"    .venv/bin/python benchmarks/batch_inference.py --images {args.images} --repeats {args.repeats} "
        f"--workers {args.workers}{' --no-ray' if args.no_ray else ''}", "",
        f"ResNet50 224x224x1 int8, {args.images} CR DICOM files 512x512; median [min, max] over {args.repeats} repeats.", "",
        "| path | images/s | CPU ms per image |", "|---|---|---|",
        f"| bare `Classifier.predict(path)` loop, 1 interpreter x all CPUs | {cell([b[0] for b in bare])} | "
        f"{cell([b[1] * 1000 for b in bare])} |",
        f"| the same loop, BLAS on one thread (as the pool runs it) | {cell([b[0] for b in bare_blas1])} | "
        f"{cell([b[1] * 1000 for b in bare_blas1])} |",
        f"| `medtk predict --data --workers {args.workers}` (local pool, whole job incl. model load + Parquet) | "
        f"{cell([p[0] for p in pool])} | {cell([p[1] * 1000 for p in pool])} |", "",
        f"Local pool / bare loop per repeat: {', '.join(f'{r:.2f}x' for r in ratios)} (median "
        f"{statistics.median(ratios):.2f}x; target >= 0.9x); against the loop with BLAS on one thread: "
        f"{', '.join(f'{r:.2f}x' for r in ratios_blas1)} (median {statistics.median(ratios_blas1):.2f}x).", "",
        *ray_lines, *([""] if ray_lines else []),
        f"CPU flags: {flags}.", "",
    ]
    text = RESULTS.read_text() if RESULTS.exists() else ""
    start = text.find(HEADING)
    if start >= 0:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    RESULTS.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
