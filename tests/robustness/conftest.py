"""Shared pieces of the hostile-user battery: the real CLI, one-line error checks, crafted files.

The models are the session's real small TFLite models (tests/conftest.py `test_models`), built once.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medtk.cli import app
from tests.runtime.conftest import float_model, gray_image, int8_model  # noqa: F401 (shared fixtures)
from tests.runtime.runtime_models import with_operating_point

runner = CliRunner()


def cli(*args: str):
    """Run `medtk ARGS` in-process (the real Typer app, as the console script runs it)."""
    return runner.invoke(app, [str(arg) for arg in args])


def assert_one_line_error(result, exit_code: int, match: str) -> str:
    """The command failed with `exit_code` and said so in exactly one line, without a traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("medtk: error:")]
    assert len(errors) == 1, result.stderr
    assert match in errors[0], errors[0]
    return errors[0]


def png_bytes(width: int, height: int, depth: int = 16, colour: int = 2, rows: int = 4) -> bytes:
    """A PNG whose header says `width`x`height` with a valid CRC, and image data for a few rows only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    row = b"\0" + b"\0" * max(1, min(width, 4096) * samples * max(depth, 8) // 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def clinical_model(test_models, tmp_path_factory) -> Path:
    """The gray float model with a positive class and operating point, sealed as compress seals it."""
    path = tmp_path_factory.mktemp("robustness") / "clinical.tflite"
    path.write_bytes(with_operating_point(test_models.float32.read_bytes()))
    return path
