"""`medtk serve` against hostile clients: the node's peak memory under bombs, and how long a stalled client
holds a slot (issue 21).

    .venv/bin/python benchmarks/serve_hostile.py

A node runs as its own process with its defaults (--workers 1 --threads 1, rules that skip every image,
so no model run adds to its memory; a small test model built once under benchmarks/.cache/). Memory is
how far the node's resident memory peaked above its level before each attack (VmHWM, reset first), one
attack after another; times are measured by the attacking client, from its first byte to the node's
answer or close.

- deflate bomb: a Deflated Explicit VR Little Endian C-STORE, ~1 MB on the wire, a private OB of zeros
  that inflates to 1 GiB (limit: --max-dataset-bytes, 256 MiB);
- 300 MB data set: a C-STORE of 300 MB (pynetdicom streams it from a file); 200 MB: one under the limit;
- 300 MB A-ASSOCIATE-RQ: a PDU header announcing it;
- slot holders, at the same time (and before the floods, which would close the oldest of them): an
  association request trickled a byte every 5 s, an HTTP upload that stops after 3 bytes, a request
  line that never ends;
- floods: 40 connections that send half an association request header, then a C-ECHO (and the node's
  thread count); 70 half-open HTTP connections, then GET /healthz.

Writes the section "## medtk serve under hostile clients (issue 21)" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
HEADING = "## medtk serve under hostile clients (issue 21)"
# measured by hand: `benchmarks/serve_hostile.py --acks-only` with serve/ and toolkit/ as at cc6d581,
# alternating with this change on the same host, twice each; CPU per C-STORE from getrusage in-process
ACKS_BEFORE = (
    "Before this change (`--acks-only` with serve/ and toolkit/ as at cc6d581, alternating with this change, "
    "twice each): medians 171 and 178/s, against 104 and 109/s with it. Receiving into a file costs CPU: "
    "~3.4 ms per C-STORE against ~2.4 ms (the node in-process, getrusage over 100 C-STOREs), of which ~0.7 ms "
    "is pynetdicom writing and flushing each 16 kB fragment, ~0.2 ms reading the header back from disk and "
    "~0.2 ms the guard. Processing such an image costs ~38 ms of CPU (52 images/s on 2 cores, section "
    "'medtk serve')."
)
MiB = 1024 * 1024
sys.path[:0] = [str(HERE), str(REPO)]


def test_model() -> Path:
    """The small float32 test model (MobileNetV2 64x64), built once; the node only needs a valid model."""
    from tests.runtime.runtime_models import build_runtime_models

    folder = HERE / ".cache" / "hostile"
    model = folder / "float32.tflite"
    if not model.exists():
        folder.mkdir(parents=True, exist_ok=True)
        built = build_runtime_models(folder, names=("float32",))
        built["float32"].replace(model)
    return model


def closed_after(sock: socket.socket) -> float:
    """Seconds until the node closes `sock` (reading and dropping what it sends)."""
    started = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return time.monotonic() - started


def trickled_request(port: int) -> float:
    from tests.serve.serve_helpers import LOOPBACK, association_request

    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        started = time.monotonic()
        for byte in association_request():
            sock.sendall(bytes([byte]))
            try:
                sock.recv(4096)  # the node's A-ABORT, or its close
            except TimeoutError:
                continue  # 5 s later, the next byte
            break
        return time.monotonic() - started


def stalled_upload(port: int) -> tuple[float, str]:
    from tests.serve.serve_helpers import LOOPBACK

    with socket.create_connection((LOOPBACK, port), timeout=300) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: medtk\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 100000\r\n\r\n\x89PN")
        answer = sock.recv(64).split(b"\r\n")[0].decode()
        return time.monotonic() - started, answer


def half_request_line(port: int) -> float:
    from tests.serve.serve_helpers import LOOPBACK

    with socket.create_connection((LOOPBACK, port), timeout=300) as sock:
        sock.sendall(b"GET /hea")
        return closed_after(sock)


def memory_attacks(node, folder: Path) -> list[tuple[str, str, str, str]]:
    """Each attack with the node's answer, its seconds and how far the node's RSS peaked above before."""
    from tests.serve.serve_helpers import LOOPBACK, padded_instance, peak_growth, send_files

    pixels = np.full((64, 64), 5, np.uint8)
    rows = []

    def attack(name: str, action) -> None:
        started = time.monotonic()
        outcome, grown = peak_growth(node.process.pid, action)
        rows.append((name, outcome, f"{time.monotonic() - started:.2f}", f"{grown / MiB:+.0f}"))
        print(" | ".join(rows[-1]), flush=True)

    def store(name: str, padding: int, deflated: bool = False) -> None:
        path = padded_instance(folder / "attack.dcm", pixels, padding, deflated=deflated)
        wire = f"{path.stat().st_size / 1e6:.1f} MB on the wire, " if deflated else ""
        attack(name.format(wire=wire), lambda: _status(send_files(node.dicom_port, [path])))
        path.unlink()

    def huge_request() -> str:
        with socket.create_connection((LOOPBACK, node.dicom_port), timeout=10) as sock:
            sock.sendall(struct.pack(">BBL", 0x01, 0, 300 * 1000 * 1000))
            answer = sock.recv(64)
            return f"A-ABORT reason {answer[-1]}, closed" if answer[:1] == b"\x07" else repr(answer)

    store("deflate bomb ({wire}inflates to 1 GiB)", 1024 * MiB, deflated=True)
    store("C-STORE of a 300 MB data set", 300 * 1000 * 1000)
    store("C-STORE of a 200 MB data set (under the limit)", 200 * 1000 * 1000)
    attack("A-ASSOCIATE-RQ header announcing 300 MB", huge_request)
    return rows


def slot_holders(node) -> dict[str, str]:
    """How long each stalled client kept its connection, all three at once."""
    held: dict[str, str] = {}
    workers = [
        threading.Thread(target=lambda: held.update(dicom=f"{trickled_request(node.dicom_port):.1f} s")),
        threading.Thread(target=lambda: held.update(upload="{:.1f} s ({})".format(*stalled_upload(node.http_port)))),
        threading.Thread(target=lambda: held.update(line=f"{half_request_line(node.http_port):.1f} s")),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return held


def floods(node) -> tuple[str, str]:
    """40 half-open DICOM connections, then a C-ECHO; 70 half-open HTTP connections, then GET /healthz."""
    import httpx
    import psutil
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification
    from tests.serve.serve_helpers import LOOPBACK

    threads_before = psutil.Process(node.process.pid).num_threads()
    half_open = [socket.create_connection((LOOPBACK, node.dicom_port), timeout=10) for _ in range(40)]
    for sock in half_open:
        sock.sendall(b"\x01\x00\x00")
    time.sleep(1.0)
    threads_during = psutil.Process(node.process.pid).num_threads()
    ae = AE(ae_title="BENCH")
    ae.add_requested_context(Verification)
    started = time.monotonic()
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    echo = f"C-ECHO 0x{int(association.send_c_echo().Status):04X}" if association.is_established else "C-ECHO refused"
    echo += f" in {time.monotonic() - started:.2f} s"
    if association.is_established:
        association.release()
    for sock in half_open:
        sock.close()
    dicom = f"{echo}, node threads {threads_before} before, {threads_during} with 40 half-open"
    http_open = [socket.create_connection((LOOPBACK, node.http_port), timeout=10) for _ in range(70)]
    for sock in http_open:
        sock.sendall(b"GET /hea")
    started = time.monotonic()
    health = httpx.get(f"http://{LOOPBACK}:{node.http_port}/healthz", timeout=30).status_code
    http = f"GET /healthz {health} in {time.monotonic() - started:.2f} s"
    for sock in http_open:
        sock.close()
    return dicom, http


def acknowledged(node, folder: Path, count: int = 100, repeats: int = 5) -> list[float]:
    """C-STOREs acknowledged per second: storescu sends `count` 512x512 CR files (skipped by the rules,
    so this is the receive path alone), `repeats` times."""
    from tests.serve.serve_helpers import radiograph, storescu

    files = []
    for index in range(count):
        files.append(folder / f"ack{index}.dcm")
        pixels = np.random.default_rng(index).integers(0, 255, (512, 512), dtype=np.uint8)
        radiograph(pixels).save_as(files[-1], enforce_file_format=True)
    rates = []
    for _ in range(repeats):
        started = time.monotonic()
        assert storescu(node.dicom_port, files).returncode == 0
        rates.append(count / (time.monotonic() - started))
    return rates


def main() -> int:
    import psutil
    from tests.serve.serve_helpers import NodeProcess, free_port

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--acks-only", action="store_true",
                        help="only the acknowledgement rate, printed (runs against an older node too)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medtk-hostile-") as scratch:
        folder = Path(scratch)
        (folder / "tmpdir").mkdir()
        os.environ["TMPDIR"] = str(folder / "tmpdir")  # the node's, to see what it leaves there
        (folder / "skip.toml").write_text('default = "skip"\n')
        node = NodeProcess(test_model(), folder / "spool", folder / "node.log", free_port(), free_port(),
                           args=("--workers", "1", "--threads", "1", "--rules", str(folder / "skip.toml"))).start()
        try:
            rates = acknowledged(node, folder)
            print("512x512 C-STOREs acknowledged per second:", " ".join(f"{rate:.0f}" for rate in rates), flush=True)
            if args.acks_only:
                return 0
            baseline = psutil.Process(node.process.pid).memory_info().rss
            rows = memory_attacks(node, folder)
            left = sorted(p.name for p in (folder / "tmpdir").iterdir())
            held = slot_holders(node)  # before the floods, which would close the oldest of them
            flooded = floods(node)
            final = psutil.Process(node.process.pid).memory_info().rss
        finally:
            node.stop()
        print(f"left in TMPDIR: {left}; slot holders: {held}; floods: {flooded}", flush=True)
    write_results(rows, held, flooded, rates, baseline, final, left)
    return 0


def _status(statuses: list[int | None]) -> str:
    (status,) = statuses
    return "association ended (A-ABORT)" if status is None else f"status 0x{status:04X}"


def write_results(rows, held, flooded: tuple[str, str], rates: list[float], baseline: int, final: int,
                  left: list[str]) -> None:
    flags = subprocess.run("grep -o -w 'avx2\\|avx512f\\|avx512_vnni' /proc/cpuinfo | sort -u", shell=True,
                           capture_output=True, text=True).stdout.split()
    lines = [
        HEADING, "",
        "`.venv/bin/python benchmarks/serve_hostile.py` on this host "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "`grep -o -w 'avx2\\|avx512f\\|avx512_vnni' /proc/cpuinfo | sort -u`: "
        f"{' '.join(flags) or 'none'}). A node as its own process with its defaults, `--workers 1 "
        "--threads 1` and rules that skip every image (no model run adds to its memory); one attack after "
        "another; 'peak RSS' is how far the node's resident memory peaked (VmHWM, reset before each attack) above "
        "its level before the attack.", "",
        f"Node RSS before the attacks: {baseline / MiB:.0f} MiB; after them all: {final / MiB:.0f} MiB.", "",
        "| attack | node's answer | seconds | peak RSS |",
        "|---|---|---|---|",
        *[f"| {name} | {outcome} | {seconds} | {grown} MiB |" for name, outcome, seconds, grown in rows],
        "",
        f"Left in the node's TMPDIR afterwards: {', '.join(left) or 'nothing'}.", "",
        "How long a stalled client holds a slot (all three at once, defaults):", "",
        f"- an A-ASSOCIATE-RQ trickled a byte every 5 s: closed after {held.get('dicom')} (ACSE timeout 30 s; "
        "before, never, while bytes kept coming);",
        f"- an HTTP upload that stops after 3 bytes: answered after {held.get('upload')} "
        "(--http-body-timeout 60 s; it held one of --max-uploads, no queue slot; before, a queue slot for as "
        "long as it liked);",
        f"- a request line that never ends: closed after {held.get('line')} (--http-header-timeout 10 s; "
        "before, never).", "",
        f"Floods: 40 connections with half an association request header: {flooded[0]} (--max-associations 8; "
        f"before, two threads per connection for 30 s each). 70 half-open HTTP connections: {flooded[1]} "
        "(before: 503).", "",
        "What receiving into a file costs: 512x512 CR C-STOREs from storescu acknowledged per second (100 files, "
        "skipped by the rules, so the receive path alone), per run: "
        f"{' '.join(f'{rate:.0f}' for rate in rates)} (median {statistics.median(rates):.0f}). "
        f"{ACKS_BEFORE}", "",
        "Before this change (the same attacks in tests/serve/test_hostile_dicom.py at cc6d581): a 512 MiB "
        "deflate bomb was acknowledged (0x0000) and raised the node's peak RSS by 1004 MiB; 48 + 96 MiB data "
        "sets were acknowledged and raised it by 214 MiB.", "",
    ]
    text = RESULTS.read_text()
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + "\n".join(lines) + ("" if end == -1 else text[end:])
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")


if __name__ == "__main__":
    sys.exit(main())
