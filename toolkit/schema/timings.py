"""RUN/timings.json (`medtk-timings/1`): where a training run's time went, and on which CPU.

Written by `medtk train` after decoding and after every epoch (so an interrupted run keeps what it
measured; a resumed run replaces the epochs it redoes), read by `medtk train`'s closing summary and
benchmarks/train_phases.py. Each phase has wall and CPU seconds: CPU seconds count every thread of the
process, so CPU / wall is how many cores the phase kept busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from medtk.jsondoc import Document


@dataclass(frozen=True)
class Seconds:
    """Wall-clock and process CPU seconds of one phase."""

    wall: float
    cpu: float

    def __add__(self, other: "Seconds") -> "Seconds":
        return Seconds(wall=self.wall + other.wall, cpu=self.cpu + other.cpu)


@dataclass(frozen=True)
class EpochTimings:
    """One epoch, split into its phases (None: the phase did not run in that epoch)."""

    epoch: int  # 0-based, counted across phases as history.csv counts
    phase: str  # the training phase (head, fine_tune, scratch)
    images: int  # training images per epoch
    train: Seconds  # the optimizer steps (input pipeline and augmentation included)
    precise_batchnorm: Seconds | None  # the BatchNorm statistics recomputed before validation
    validation: Seconds | None
    checkpointing: Seconds  # after validation: best checkpoint, resume backup, history and logs written

    @property
    def total(self) -> Seconds:
        parts = [self.train, self.precise_batchnorm, self.validation, self.checkpointing]
        return sum((part for part in parts if part is not None), Seconds(0.0, 0.0))


@dataclass(frozen=True)
class HostSummary:
    """The CPU a run trained on and the numeric settings TensorFlow used there."""

    cpu_model: str
    cpu_flags: tuple[str, ...]  # of avx2, avx512f, avx512_vnni, avx512_bf16, amx_tile
    logical_cpus: int
    usable_cpus: int
    cpu_mhz: float | None
    tensorflow: str
    onednn: str  # "on" / "off", and whether TF_ENABLE_ONEDNN_OPTS set it or TF's default did
    intra_op_threads: int  # 0 = TensorFlow's default (one per usable CPU)
    inter_op_threads: int
    choices: tuple[str, ...] = ()  # the CPU-dependent decisions made for this run, one sentence each


@dataclass(frozen=True)
class TrainingTimings(Document):
    SCHEMA: ClassVar[str] = "medtk-timings/1"

    host: HostSummary | None = None
    decode: Seconds | None = None  # every split decoded into model input, before training
    decoded_images: int = 0
    epochs: tuple[EpochTimings, ...] = ()
    after: dict[str, Seconds] = field(default_factory=dict)  # after the epochs: final BatchNorm, calibration, save, evaluation

    def with_epoch(self, timing: EpochTimings) -> "TrainingTimings":
        """These timings with `timing` in place of any earlier record of its epoch (a resumed run redoes it)."""
        kept = [epoch for epoch in self.epochs if epoch.epoch != timing.epoch]
        return replace(self, epochs=tuple(sorted([*kept, timing], key=lambda epoch: epoch.epoch)))

    def phase_totals(self) -> dict[str, Seconds]:
        """Seconds per phase over the whole run, in the order it runs them."""
        totals: dict[str, Seconds] = {}
        if self.decode is not None:
            totals["decode"] = self.decode
        for epoch in self.epochs:
            for name in ("train", "precise_batchnorm", "validation", "checkpointing"):
                part = getattr(epoch, name)
                if part is not None:
                    totals[name] = totals.get(name, Seconds(0.0, 0.0)) + part
        for name, part in self.after.items():
            totals[f"after: {name}"] = part
        return totals
