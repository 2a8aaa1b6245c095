"""How `medtk bench` talks to a worker process, here or on a device: the command line it runs and the
one JSON line it reads back.

The module name is a contract with devices that may have an older medtk installed (`--host`), so it
stays `medtk.runtime.bench_worker` (a shim for `medtk.runtime.bench.worker`) and the result line
stays `ModelBench` as JSON, or `{"error": message, "type": class name}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from medtk.errors import MedtkError
from medtk.runtime.bench.measurement import ModelBench

WORKER_MODULE = "medtk.runtime.bench_worker"


def worker_command(python: str, model: str, threads: int, runs: int, warmup: int, delegate: str,
                   image: str | None = None) -> list[str]:
    """`python -m medtk.runtime.bench_worker MODEL --threads .. --runs .. --warmup .. --delegate .. [--image ..]`."""
    args = [python, "-m", WORKER_MODULE, model, "--threads", str(threads), "--runs", str(runs),
            "--warmup", str(warmup), "--delegate", delegate]
    return args + (["--image", image] if image is not None else [])


def result_line(bench: ModelBench) -> str:
    return json.dumps(asdict(bench))


def error_line(error: Exception) -> str:
    return json.dumps({"error": str(error), "type": type(error).__name__})


def parse_worker_output(output: str, where: str) -> ModelBench:
    """The worker prints one JSON object as its last stdout line (libraries may print before it)."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise MedtkError(f"{where}: the bench worker printed no result")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise MedtkError(f"{where}: the bench worker printed a broken result ({error})") from None
    if "error" in data:
        message = data["error"]
        raise MedtkError(message if where in message else f"{where}: {message}")
    return _model_bench(data, where)


def worker_error(stdout: str) -> str | None:
    """The message of a worker's error line, if its output ends with one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line).get("error")
            except json.JSONDecodeError:
                return None
    return None


def _model_bench(data: dict[str, Any], where: str) -> ModelBench:
    import dacite

    try:
        return dacite.from_dict(ModelBench, _finite(data), config=dacite.Config(check_types=True))
    except (dacite.DaciteError, TypeError, ValueError) as error:
        raise MedtkError(f"{where}: the bench worker's result is not one this medtk reads ({error})") from None


def _finite(value: Any) -> Any:
    """Non-finite numbers as None: an older worker wrote an unmeasurable throughput as Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value
