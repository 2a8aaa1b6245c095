"""Where a training run's time goes, measured by the trainer itself (RUN/timings.json, issue 25).

Each epoch is split at the events Keras reports: the optimizer steps end when validation begins; the
precise-BatchNorm pass (fit.py) runs first thing in validation and is lapped on its own; validation ends
at `on_test_end`; what follows until the last callback (best checkpoint, resume backup, history, logs) is
checkpointing. Before the epochs, decoding; after them, the final BatchNorm pass, calibration, saving and
evaluation. Wall seconds (`perf_counter`) and process CPU seconds (`process_time`, every thread) per
phase: on a shared machine the CPU seconds are the steadier figure.

The record also names the CPU and TensorFlow's numeric settings, and the CPU-dependent choices, which
are logged as they are made (`cpu_choices`).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator

from medtk.devices.cpu import CpuInfo, read_cpu
from medtk.run import Run
from medtk.schema.timings import EpochTimings, HostSummary, Seconds, TrainingTimings
from medtk.train.tfenv import keras, tensorflow

log = logging.getLogger(__name__)

EpochListener = Callable[[EpochTimings, int], None]  # (the epoch just finished, the epochs the run plans)


class Stopwatch:
    """Wall and process CPU seconds since it started or last lapped."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self) -> Seconds:
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = Seconds(wall=round(wall - self._wall, 3), cpu=round(cpu - self._cpu, 3))
        self._wall, self._cpu = wall, cpu
        return elapsed


class TimingRecorder:
    """The run's `TrainingTimings`, written to RUN/timings.json after every change (atomic writes)."""

    def __init__(self, run: Run, host: HostSummary, planned_epochs: int = 0,
                 on_epoch: EpochListener | None = None) -> None:
        previous = run.timings()  # a resumed run keeps the epochs it measured before
        self.run, self.planned_epochs, self.on_epoch = run, planned_epochs, on_epoch
        self.timings = replace(previous or TrainingTimings(), host=host)
        self._epoch: dict[str, Seconds] = {}
        self._watch: Stopwatch | None = None
        self._save()

    @contextmanager
    def decoding(self, images: int) -> Iterator[None]:
        watch = Stopwatch()
        yield
        self.timings = replace(self.timings, decode=watch.lap(), decoded_images=images)
        self._save()

    @contextmanager
    def after(self, name: str) -> Iterator[None]:
        """Time a step after the epochs (final BatchNorm, calibration, save, evaluation)."""
        watch = Stopwatch()
        yield
        self.timings = replace(self.timings, after={**self.timings.after, name: watch.lap()})
        self._save()

    def lap(self, part: str) -> None:
        """End the epoch's `part` now (the precise-BatchNorm callback calls this when its pass is done)."""
        if self._watch is not None:
            self._epoch[part] = self._watch.lap()

    def callbacks(self, phase: str, images: int) -> tuple[object, object]:
        """(first, last) callbacks of a phase's fit: the first must precede every other callback, the
        last follow them all (BackupAndRestore included), so the laps bracket their work."""
        k = keras()
        recorder = self

        class EpochStart(k.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                recorder._watch, recorder._epoch = Stopwatch(), {}

            def on_test_begin(self, logs=None):
                if "train" not in recorder._epoch:
                    recorder.lap("train")

            def on_test_end(self, logs=None):
                recorder.lap("validation")

            def on_epoch_end(self, epoch, logs=None):
                if "train" not in recorder._epoch:  # an epoch without validation
                    recorder.lap("train")
                if logs is not None:  # history.csv's column since before timings.json
                    logs["train_seconds"] = recorder._epoch["train"].wall

        class EpochEnd(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                recorder.lap("checkpointing")
                recorder._record(epoch, phase, images)

        return EpochStart(), EpochEnd()

    def _record(self, epoch: int, phase: str, images: int) -> None:
        parts = self._epoch
        timing = EpochTimings(epoch=int(epoch), phase=phase, images=images, train=parts["train"],
                              precise_batchnorm=parts.get("precise_batchnorm"), validation=parts.get("validation"),
                              checkpointing=parts["checkpointing"])
        self.timings = self.timings.with_epoch(timing)
        self._save()
        log.info("epoch %d: %s", epoch + 1, describe_epoch(timing))
        if self.on_epoch is not None:
            self.on_epoch(timing, self.planned_epochs)

    def _save(self) -> None:
        self.run.write(self.run.timings_file, self.timings)


def describe_epoch(timing: EpochTimings) -> str:
    """One line: each phase's wall seconds (CPU seconds)."""
    parts = [("train", timing.train), ("precise BatchNorm", timing.precise_batchnorm),
             ("validation", timing.validation), ("checkpointing", timing.checkpointing)]
    return ", ".join(f"{name} {value.wall:.1f} s ({value.cpu:.1f} s CPU)" for name, value in parts if value is not None)


def summary_lines(timings: TrainingTimings) -> list[str]:
    """The run's time per phase, for the end of `medtk train`: wall, CPU and each phase's share of the wall."""
    totals = timings.phase_totals()
    whole = sum(value.wall for value in totals.values()) or 1.0
    lines = [f"{name:<24} {value.wall:8.1f} s wall {value.cpu:8.1f} s CPU  {100 * value.wall / whole:5.1f}%"
             for name, value in totals.items()]
    if timings.host is not None:
        host = timings.host
        lines.append(f"on {host.cpu_model}: {host.usable_cpus} CPUs, {' '.join(host.cpu_flags) or 'no AVX2'}; "
                     f"TensorFlow {host.tensorflow}, oneDNN {host.onednn}")
    return lines


def host_summary(placement) -> HostSummary:
    """The CPU and TensorFlow's numeric settings for this run; logs the CPU-dependent choices."""
    tf = tensorflow()
    cpu = read_cpu()
    choices = cpu_choices(cpu, placement)
    log.info("CPU: %s", cpu.describe())
    for choice in choices:
        log.info("CPU-dependent choice: %s", choice)
    return HostSummary(
        cpu_model=cpu.model,
        cpu_flags=cpu.flags,
        logical_cpus=cpu.logical_cpus,
        usable_cpus=cpu.usable_cpus,
        cpu_mhz=cpu.mhz,
        tensorflow=tf.__version__,
        onednn=onednn_state(),
        intra_op_threads=int(tf.config.threading.get_intra_op_parallelism_threads()),
        inter_op_threads=int(tf.config.threading.get_inter_op_parallelism_threads()),
        choices=tuple(choices),
    )


def onednn_state() -> str:
    """Whether TensorFlow's oneDNN kernels are on: TF_ENABLE_ONEDNN_OPTS, else TF's default (on for x86-64)."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is not None:
        return f"{'off' if value.strip() in ('0', 'false', 'False') else 'on'} (TF_ENABLE_ONEDNN_OPTS={value})"
    default = "on" if platform.machine().lower() in ("x86_64", "amd64") else "off"
    return f"{default} (TensorFlow's default on {platform.machine()})"


def cpu_choices(cpu: CpuInfo, placement) -> list[str]:
    """What this run decided because of the CPU it runs on (or would have decided differently elsewhere)."""
    choices = []
    on_cpu = not any("GPU" in device.upper() for device in placement.devices)
    if on_cpu and placement.mixed_precision == "mixed_bfloat16" and not cpu.bfloat16:
        choices.append("bfloat16 as asked, but this CPU has neither AVX512-BF16 nor AMX: it is emulated and "
                       "likely slower than float32")
    elif on_cpu and placement.mixed_precision == "float32" and cpu.bfloat16:
        choices.append("float32: this CPU has AVX512-BF16/AMX, where --mixed-precision bfloat16 trains faster (2.2x "
                       "per demo epoch); not chosen automatically: on the demo its CAMs pointed at the lesions less "
                       "often (benchmarks/RESULTS.md)")
    elif on_cpu:
        choices.append(f"{placement.mixed_precision}: this CPU has no AVX512-BF16 or AMX" if not cpu.bfloat16
                       else f"{placement.mixed_precision} as asked")
    if on_cpu:
        widest = cpu.flags[-1] if cpu.flags else "SSE only"
        choices.append(f"oneDNN {onednn_state()} picks its kernels for the widest extension at run time: {widest}"
                       f"{' (capped by ONEDNN_MAX_CPU_ISA=' + os.environ['ONEDNN_MAX_CPU_ISA'] + ')' if 'ONEDNN_MAX_CPU_ISA' in os.environ else ''}")
        choices.append(f"XLA {'on' if placement.xla else 'off'} (auto: on only with a GPU)")
    return choices
