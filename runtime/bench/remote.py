"""Run the bench worker on a device over SSH: copy the model with scp, run, read JSON, clean up.

The device needs only `pip install medtk` and an SSH login by key (BatchMode: never a password prompt).
The system `ssh`/`scp` binaries are used, so the user's ~/.ssh/config, agents and jump hosts apply.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from medtk.errors import MedtkError
from medtk.runtime.bench.measurement import ModelBench
from medtk.runtime.bench.protocol import parse_worker_output, worker_command, worker_error

CONNECT_TIMEOUT_S = 15


@dataclass(frozen=True)
class RemoteTarget:
    destination: str  # user@address
    port: int | None = None
    options: tuple[str, ...] = ()  # extra `-o Key=Value` options
    python: str = "python3"

    def describe(self) -> dict:
        return {"host": self.destination, "port": self.port or 22, "python": self.python}


def _common(target: RemoteTarget) -> list[str]:
    args = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    for option in target.options:
        args += ["-o", option]
    return args


def _ssh(target: RemoteTarget, command: str, timeout: float | None = None) -> str:
    args = ["ssh", *_common(target)]
    if target.port:
        args += ["-p", str(target.port)]
    return _run([*args, target.destination, command], target, timeout)


def _scp(target: RemoteTarget, files: list[Path], folder: str) -> None:
    args = ["scp", "-q", *_common(target)]
    if target.port:
        args += ["-P", str(target.port)]
    _run([*args, *map(str, files), f"{target.destination}:{folder}/"], target, None)


def _run(args: list[str], target: RemoteTarget, timeout: float | None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise MedtkError(f"--host {target.destination}: the '{args[0]}' program is not installed") from None
    except subprocess.TimeoutExpired:
        raise MedtkError(f"--host {target.destination}: {args[0]} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        # A worker error is JSON on stdout; show its message rather than ssh's exit status.
        reason = worker_error(done.stdout) or reason
        raise MedtkError(f"--host {target.destination}: {args[0]} failed: {reason}")
    return done.stdout


def run_remote(target: RemoteTarget, model: Path, threads: int, runs: int, warmup: int, delegate: str,
               image: Path | None = None) -> ModelBench:
    """Measure `model` on the remote machine with `python -m medtk.runtime.bench_worker`."""
    folder = _ssh(target, "mktemp -d -t medtk-bench.XXXXXX").strip()
    if not folder.startswith("/"):
        raise MedtkError(f"--host {target.destination}: could not create a temporary folder (got {folder!r})")
    try:
        _scp(target, [model] + ([image] if image else []), folder)
        remote_image = f"{folder}/{image.name}" if image else None
        args = worker_command(target.python, f"{folder}/{model.name}", threads, runs, warmup, delegate, remote_image)
        output = _ssh(target, " ".join(shlex.quote(arg) for arg in args))
    finally:
        _ssh(target, f"rm -rf {shlex.quote(folder)}")
    return parse_worker_output(output, f"{target.destination}:{model.name}")
