"""Prepared datasets (issue 24): `prepare` against the decoder alone, streaming against in-memory training,
and the input pipeline's peak memory as the dataset grows.

    .venv/bin/python benchmarks/prepare_throughput.py decode  [--images 1000] [--size 224] [--threads 2] [--repeats 3]
    .venv/bin/python benchmarks/prepare_throughput.py train   [--images 2048] [--size 64] [--repeats 2]
    .venv/bin/python benchmarks/prepare_throughput.py pipeline [--images 4096] [--size 64] [--repeats 3]
    .venv/bin/python benchmarks/prepare_throughput.py memory  [--sizes 16000,64000] [--size 128] [--pipelines memory,stream]
    sudo .venv/bin/python benchmarks/prepare_throughput.py capped --images 1700000 [--size 64] [--cap-mib 2240] [--steps 60] [--full-pass]

decode: PneumoniaMNIST training images upscaled to 512x512 PNG files (real files, class folders); images/s of
(a) the decoder alone: `decode_image` + `prepare_input` in a pool of `--threads` (the limit), (b) `prepare_dataset`
writing shards from an already loaded dataset (the same decode plus encoding, checksums, sha256, fsync), and (c)
`prepare_source` end to end (load + the bad-file check, which decodes every file and keeps it at model size,
+ writing the shards from those: each file decoded once), and (d) the same without keeping the check's
pixels, as before 04639a8 (each file decoded twice).
train: the same model (ResNet50, from scratch, batch 32) fit for 2 epochs on the in-memory pipeline and on the
stream of a prepared dataset of the same images; images/s of the second epoch (the first compiles), alternating
the order per repeat. pipeline: the same two input pipelines iterated alone (no model), second pass timed.
memory: in a fresh process per (pipeline, dataset size), one full pass of each input pipeline
(no model) over a prepared dataset of N images; peak RSS (VmHWM) minus RSS after importing TensorFlow.
capped (root: it makes a cgroup v1 memory group): a prepared dataset of N images, then a fresh process in a cgroup
limited to `--cap-mib` (no swap here) lets `choose_pipeline` pick the input (auto) and fits ResNet50 for
`--steps` optimizer steps on it; then the in-memory pipeline is forced under the same cap; with `--full-pass`,
the training stream alone reads every record once under the cap (a full epoch of ResNet50 over 1.7M images
takes most of a day on 2 cores). Reports the choice, peak RSS, the cgroup's failcnt and OOM kills, how each process ended.
Prints Markdown rows (median and min-max of the repeats) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "prepare"
NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"


def png_folder(images: int) -> Path:
    folder = CACHE / f"png512-{images}"
    if folder.is_dir():
        return folder
    data = np.load(NPZ)
    names = ("normal", "pneumonia")
    for i in range(images):
        pixels = cv2.resize(data["train_images"][i], (512, 512), interpolation=cv2.INTER_CUBIC)
        path = folder / names[int(data["train_labels"][i, 0])] / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), pixels)
    return folder


def tiled_npz(images: int) -> Path:
    """A MedMNIST-layout .npz of `images` training items (PneumoniaMNIST tiled) for the memory pass."""
    path = CACHE / f"tiled-{images}.npz"
    if path.is_file():
        return path
    data = np.load(NPZ)
    reps = -(-images // len(data["train_images"]))
    arrays = {"train_images": np.tile(data["train_images"], (reps, 1, 1))[:images],
              "train_labels": np.tile(data["train_labels"], (reps, 1))[:images]}
    for split in ("val", "test"):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = data[f"{split}_images"][:64], data[f"{split}_labels"][:64]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} [{min(values):.0f}, {max(values):.0f}]"


def bench_decode(args) -> None:
    import shutil

    from medtk.data import load_dataset
    from medtk.data.prepared import prepare_dataset
    from medtk.data.prepared.source import prepare_source
    from medtk.runtime.imaging import decode_image, prepare_input
    from medtk.runtime.inputs import find_images

    folder = png_folder(args.images)
    files = find_images(folder, max_files=None)
    rates: dict[str, list[float]] = {"decoder alone": [], "prepare: write shards": [], "prepare: end to end": [],
                                     "end to end, decoding twice (no stage: before 04639a8)": []}
    out = CACHE / "out"
    for _ in range(args.repeats):
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda f: prepare_input(decode_image(f), args.size, 1).sum(), files))
        rates["decoder alone"].append(len(files) / (time.perf_counter() - started))
        dataset = load_dataset(str(folder), val_fraction=0.1, test_fraction=0.2)
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        prepare_dataset(dataset, out, args.size, 1, threads=args.threads)
        rates["prepare: write shards"].append(len(files) / (time.perf_counter() - started))
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        prepare_source(str(folder), out, args.size, 1, threads=args.threads)
        rates["prepare: end to end"].append(len(files) / (time.perf_counter() - started))
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()  # the check's pixels thrown away: every file decoded again by the writer
        loaded = load_dataset(str(folder), val_fraction=0.1, test_fraction=0.2)
        prepare_dataset(loaded, out, args.size, 1, threads=args.threads)
        rates["end to end, decoding twice (no stage: before 04639a8)"].append(
            len(files) / (time.perf_counter() - started))
    print(f"| what ({len(files)} PNG 512x512 -> {args.size} px, {args.threads} threads) | images/s median [min, max] |")
    print("| --- | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {spread(values)} |")


def _pipelines(args, name: str):
    """The training split of `args.images` PneumoniaMNIST images and its two input pipelines, in memory and
    streamed from a freshly prepared copy (same images, same augmentation)."""
    import shutil

    from medtk.config import AugmentConfig
    from medtk.data import load_dataset
    from medtk.data.prepared import open_prepared, prepare_dataset
    from medtk.train.pipeline import make_dataset, prepare_split
    from medtk.train.prepared import tf_dataset

    dataset = load_dataset(str(NPZ), subset=args.images)
    out = CACHE / f"{name}-{args.images}-{args.size}"
    shutil.rmtree(out, ignore_errors=True)
    prepare_dataset(dataset, out, args.size, 1)
    prepared = open_prepared(out)
    train = dataset.splits["train"]
    images = prepare_split(train, args.size, 1)
    augment = AugmentConfig(horizontal_flip=False, vertical_flip=False)
    return train, {
        "memory": lambda: make_dataset(images, train.labels, 2, 32, True, augment, 0),
        "stream": lambda: tf_dataset(prepared, "train", num_classes=2, batch_size=32, training=True, augment=augment),
    }


def bench_train(args) -> None:
    from medtk.train.model import ModelSpec, build_classifier, training_view
    from medtk.train.tfenv import keras

    train, pipelines = _pipelines(args, "train")
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    k = keras()
    for repeat in range(args.repeats):
        for name in (list(pipelines) if repeat % 2 == 0 else list(pipelines)[::-1]):
            k.utils.set_random_seed(0)
            model = training_view(build_classifier(ModelSpec(arch="resnet50", input_size=args.size, channels=1,
                                                             num_classes=2)))
            model.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy")
            data = pipelines[name]()
            model.fit(data, epochs=1, verbose=0)
            started = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            rates[name].append(len(train) / (time.perf_counter() - started))
    print(f"| pipeline ({len(train)} training images, {args.size} px, ResNet50, batch 32) | images/s median [min, max] |")
    print("| --- | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {spread(values)} |")
    ratios = [s / m for s, m in zip(rates["stream"], rates["memory"])]
    print(f"| stream / memory | {statistics.median(ratios):.2f}x [{min(ratios):.2f}x, {max(ratios):.2f}x] |")
    print("per repeat (memory, stream images/s): " + ", ".join(
        f"{m:.0f}, {s:.0f}" for m, s in zip(rates["memory"], rates["stream"])))


def bench_pipeline(args) -> None:
    """Images/s each input pipeline delivers on its own (no model): what the stream costs the training loop."""
    train, pipelines = _pipelines(args, "pipeline")
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for repeat in range(args.repeats):
        for name in (list(pipelines) if repeat % 2 == 0 else list(pipelines)[::-1]):
            data = pipelines[name]()
            sum(1 for _ in data)  # the first pass builds the graph and warms the file cache
            started = time.perf_counter()
            seen = sum(int(x.shape[0]) for x, _ in data)
            rates[name].append(seen / (time.perf_counter() - started))
    print(f"| input pipeline alone ({len(train)} images, {args.size} px, augmented, batch 32) | images/s median [min, max] |")
    print("| --- | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {spread(values)} |")


_MEMORY_CHILD = """
import json, sys
from pathlib import Path
def rss():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}
pipeline, path = sys.argv[1], sys.argv[2]
from medtk.train.tfenv import tensorflow
tensorflow()
from medtk.data import load_dataset
from medtk.data.prepared import open_prepared
from medtk.train.pipeline import make_dataset, prepare_split
from medtk.train.prepared import tf_dataset
prepared = open_prepared(path)
Path("/proc/self/clear_refs").write_text("5")
base = rss()["VmRSS"]
if pipeline == "memory":
    split = load_dataset(path).splits["train"]
    data = make_dataset(prepare_split(split, prepared.manifest.preprocessing.input_size, 1), split.labels, 2, 32, True)
else:
    data = tf_dataset(prepared, "train", num_classes=2, batch_size=32, training=True)
seen = sum(int(x.shape[0]) for x, _ in data)
print(json.dumps({"images": seen, "peak_above_base": rss()["VmHWM"] - base}))
"""


def bench_memory(args) -> None:
    from medtk.data import load_dataset
    from medtk.data.prepared import prepare_dataset

    print(f"| training images ({args.size} px, 1 channel) | prepared bytes | memory: peak RSS above TF | "
          "stream: peak RSS above TF |")
    print("| ---: | ---: | ---: | ---: |")
    for count in (int(n) for n in args.sizes.split(",")):
        out = CACHE / f"memory-{count}-{args.size}"
        if not (out / "manifest.json").is_file():
            prepare_dataset(load_dataset(str(tiled_npz(count)), val_fraction=0.1), out, args.size, 1)
        peaks = {"memory": None, "stream": None}
        for pipeline in args.pipelines.split(","):
            child = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, pipeline, str(out)], capture_output=True,
                                   text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            peaks[pipeline] = result["peak_above_base"]
        size = sum(p.stat().st_size for p in out.glob("train-*.tfrecord"))
        shown = {name: "not run" if peak is None else f"{peak / 2**20:.0f} MiB" for name, peak in peaks.items()}
        print(f"| {count} | {size / 2**20:.0f} MiB | {shown['memory']} | {shown['stream']} |")


_CAPPED_CHILD = """
import json, sys, time
path, size, steps, pipeline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from medtk.config import load_config
from medtk.data.prepared import open_prepared
from medtk.train.memory import usable_memory
from medtk.train.model import ModelSpec, build_classifier, training_view
from medtk.train.prepared import choose_pipeline, tf_dataset
from medtk.train.tfenv import keras
prepared = open_prepared(path)
if pipeline == "pass":  # the training stream alone, every record once
    started = time.perf_counter()
    data = tf_dataset(prepared, "train", num_classes=2, batch_size=32, training=True)
    seen = sum(int(x.shape[0]) for x, _ in data)
    print(json.dumps({"images": seen, "images_per_s": seen / (time.perf_counter() - started)}), flush=True)
    sys.exit(0)
overrides = {"data": {"src": path}, "model": {"input_size": size}, "train": {"input_pipeline": pipeline}}
choice = choose_pipeline(load_config(None, overrides), prepared, 1)
print(json.dumps({"usable_mib": usable_memory() // 2**20, "choice": choice.mode, "reason": choice.reason}), flush=True)
if choice.mode == "memory":
    from medtk.data import load_dataset
    from medtk.train.pipeline import make_dataset, prepare_split
    split = load_dataset(path).splits["train"]
    data = make_dataset(prepare_split(split, size, 1), split.labels, 2, 32, True)
else:
    data = tf_dataset(prepared, "train", num_classes=2, batch_size=32, training=True)
k = keras()
model = training_view(build_classifier(ModelSpec(arch="resnet50", input_size=size, channels=1, num_classes=2)))
model.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy")
model.fit(data, epochs=1, steps_per_epoch=5, verbose=0)  # compiles; fills the shuffle buffer
started = time.perf_counter()
model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
print(json.dumps({"steps": steps, "images_per_s": steps * 32 / (time.perf_counter() - started)}), flush=True)
"""


def _own_memory_cgroup() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise SystemExit("capped: needs the cgroup v1 memory controller (this host's kind)")


def _run_capped(cap: int, argv: list[str]) -> dict:
    """Run `argv` in a new memory cgroup limited to `cap` bytes; how it ended, its peak RSS, the cgroup's counters."""
    import os
    import uuid

    cgroup = _own_memory_cgroup() / f"medtk-capped-{uuid.uuid4().hex[:8]}"
    cgroup.mkdir()
    try:
        (cgroup / "memory.limit_in_bytes").write_text(str(cap))
        if (cgroup / "memory.memsw.limit_in_bytes").exists():
            (cgroup / "memory.memsw.limit_in_bytes").write_text(str(cap))  # no swap either
        procs = cgroup / "cgroup.procs"
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: procs.write_text(str(os.getpid())))
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        oom = dict(line.split() for line in (cgroup / "memory.oom_control").read_text().splitlines())
        return {
            "ended": f"exit {os.waitstatus_to_exitcode(status)}" if os.WIFEXITED(status)
                     else f"killed by signal {os.WTERMSIG(status)}",
            "peak_rss_mib": usage.ru_maxrss // 1024,
            "failcnt": int((cgroup / "memory.failcnt").read_text()),
            "oom_kills": int(oom.get("oom_kill", 0)),
            "lines": [json.loads(line) for line in out.splitlines() if line.startswith("{")],
        }
    finally:
        cgroup.rmdir()


def bench_capped(args) -> None:
    from medtk.data import load_dataset
    from medtk.data.prepared import prepare_dataset

    out = CACHE / f"capped-{args.images}-{args.size}"
    if not (out / "manifest.json").is_file():
        started = time.perf_counter()
        prepare_dataset(load_dataset(str(tiled_npz(args.images))), out, args.size, 1)
        print(f"prepared {args.images} images in {time.perf_counter() - started:.0f} s")
    size = sum(p.stat().st_size for p in out.glob("*.tfrecord"))
    cap = args.cap_mib * 2**20
    print(f"prepared dataset {size / 2**30:.2f} GiB (all shards); cap {cap / 2**30:.2f} GiB: {size / cap:.2f}x the cap")
    for pipeline in ("auto", "memory", *(("pass",) if args.full_pass else ())):
        result = _run_capped(cap, [sys.executable, "-c", _CAPPED_CHILD, str(out), str(args.size), str(args.steps),
                                   pipeline])
        print(json.dumps({"input_pipeline": pipeline, **result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("decode", "train", "pipeline", "memory", "capped"))
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="16000,64000")
    parser.add_argument("--pipelines", default="memory,stream", help="memory: the pass of the in-memory pipeline too")
    parser.add_argument("--cap-mib", type=int, default=2240, help="capped: the cgroup's memory limit")
    parser.add_argument("--steps", type=int, default=60, help="capped: optimizer steps timed under the cap")
    parser.add_argument("--full-pass", action="store_true",
                        help="capped: also one pass of the training stream alone over every record, under the cap")
    args = parser.parse_args()
    defaults = {"decode": (1000, 224), "train": (2048, 64), "pipeline": (4096, 64), "memory": (None, 128),
                "capped": (1_700_000, 64)}[args.what]
    args.images = args.images or defaults[0]
    args.size = args.size or defaults[1]
    {"decode": bench_decode, "train": bench_train, "pipeline": bench_pipeline, "memory": bench_memory,
     "capped": bench_capped}[args.what](args)


if __name__ == "__main__":
    main()
