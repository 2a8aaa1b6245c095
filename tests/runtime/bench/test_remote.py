"""`medtk bench --host` against a real OpenSSH server on 127.0.0.1 (slow).

Starts `/usr/sbin/sshd -D` with a generated host key and an authorized key for a temporary keypair;
the "remote" Python is this venv's. CI installs openssh-server; its absence is a failure, not a skip.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medtk.errors import MedtkError
from medtk.runtime.bench import BenchSettings, RemoteTarget, run_bench

SSHD = Path("/usr/sbin/sshd")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    assert SSHD.is_file(), "openssh-server is not installed (apt-get install -y openssh-server)"
    assert shutil.which("ssh") and shutil.which("scp"), "the openssh client (ssh, scp) is not installed"
    folder = tmp_path_factory.mktemp("sshd")
    folder.chmod(0o700)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    (folder / "authorized_keys").chmod(0o600)
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation directory sshd insists on
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
    target = RemoteTarget(
        destination=f"{user}@127.0.0.1",
        port=port,
        options=(f"IdentityFile={folder / 'client_key'}", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
                 "LogLevel=ERROR", "IdentitiesOnly=yes"),
        python=sys.executable,
    )
    deadline = time.monotonic() + 20
    while True:
        probe = subprocess.run(
            ["ssh", "-o", "BatchMode=yes", *sum((["-o", o] for o in target.options), []), "-p", str(port),
             target.destination, "true"], capture_output=True, text=True,
        )
        if probe.returncode == 0:
            break
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"sshd did not accept the test key: {probe.stderr.strip()} {server.stderr.read()[-500:]}")
        time.sleep(0.3)
    yield target
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def model(bench_models):
    return bench_models["int8"]


def test_remote_bench_runs_over_ssh_and_is_labelled_remote(sshd, model):
    report = run_bench([model], BenchSettings(runs=3, warmup=1, threads=1), device="x86-host", remote=sshd).to_json()
    result = report["results"][0]
    where = result["where"]
    assert where["mode"] == "remote"
    assert where["host"] == sshd.destination and where["port"] == sshd.port
    assert where["remote_hostname"] == socket.gethostname()
    assert result["model"] == model.name and result["variant"] == "int8"
    assert result["bare"]["runs"] == 3 and result["bare"]["p50_ms"] > 0
    assert result["estimate"] is None and result["memory_check"]["device"] == "x86-host"


def test_remote_temp_folder_is_removed(sshd, model):
    before = set(Path("/tmp").glob("medtk-bench.*"))
    run_bench([model], BenchSettings(runs=2, warmup=0, threads=1), remote=sshd)
    assert set(Path("/tmp").glob("medtk-bench.*")) == before


def test_remote_without_medtk_python_is_a_one_line_error(sshd, model):
    broken = RemoteTarget(sshd.destination, sshd.port, sshd.options, python="/nonexistent/python3")
    with pytest.raises(MedtkError, match=r"--host .*@127.0.0.1: ssh failed: .*nonexistent/python3"):
        run_bench([model], BenchSettings(runs=2, warmup=0, threads=1), remote=broken)


def test_unreachable_host_is_a_one_line_error(model):
    target = RemoteTarget("nobody@127.0.0.1", _free_port(), ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"))
    with pytest.raises(MedtkError, match=r"--host nobody@127.0.0.1: ssh failed: .*(refused|closed)"):
        run_bench([model], BenchSettings(runs=2, warmup=0, threads=1), remote=target)
