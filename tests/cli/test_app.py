"""The CLI shell: light import, version, exit codes, one-line errors and --debug tracebacks."""

import subprocess
import sys

from medtk import __version__

HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "matplotlib", "sklearn")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medtk", *args], capture_output=True, text=True)


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from medtk.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_version_and_module_entry_point():
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"medtk {__version__}"


def test_help_lists_the_pipeline_commands():
    result = _run("--help")
    assert result.returncode == 0
    for command in ("train", "eval"):
        assert command in result.stdout


def test_usage_error_exits_2():
    assert _run("no-such-command").returncode == 2
    assert _run("train", "--epochs", "many").returncode == 2


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "nothing"
    result = _run("eval", str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == f"medtk: error: {missing}: no such run folder"
    debug = _run("--debug", "eval", str(missing))
    assert debug.returncode != 0 and "Traceback" in debug.stderr + debug.stdout
