"""Does medtk's base install give x86's answers on aarch64? A real check in an emulated arm64 Debian userland.

Run as root on an x86 Debian host (`make check-arm64`; tests/compress/test_arm64.py runs a reduced form):

1. userland: `debootstrap --arch=arm64` Debian (python3, venv, openssh-server) run through
   qemu-user-static's binfmt_misc entry (mounted and enabled here if needed);
2. install: a wheel of this checkout built on the host, then `pip install medtk-*.whl` inside the
   userland exactly as a device does (base install, dependencies from PyPI; the host's CA bundle and pip
   configuration are copied in); the versions pip chose and the installed size are recorded;
3. predict: `arm64_probe.py` runs on the host and in the userland on the same signed models and images
   (library and `medtk predict --json`, seal + signature verified, a tampered copy refused), and the
   outputs are compared: same label, probabilities within the precision's tolerance, CAM correlation;
4. bench: `medtk bench MODEL --host root@127.0.0.1` against an sshd started inside the userland on a
   loopback port; its latency is under emulation and recorded only as that.

Writes OUT/summary.json (and prints it briefly); exit 0 only when everything agrees. Models come from a
compressed run (`--run RUN`: its float32, int8 and recommended variants) or are given (`--model`).
`--userland-only` does step 1 alone into OUT/userland and keeps it, for a later `--userland`: CI builds it
in the background while the first tests run (.ci/run), the userland being most of the check's time.
`--floors` installs the base dependencies at the lowest versions pyproject allows (uv's lowest-direct
resolution, as tests/runtime/test_install.py does on x86) instead of pip's newest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("arm64_probe.py")
PACKAGES = "python3,python3-venv,openssh-server,ca-certificates"
VENV = "/opt/medtk"  # the device's virtual environment, inside the userland
WORK = "/tmp/medtk-check"  # models, images, key, wheel and the probe, inside the userland
MIN_CAM_CORRELATION = 0.999
# The CPU qemu emulates (QEMU_CPU): Neoverse N1 is the Cortex-A76 class (ARMv8.2 + dot product) of a Raspberry
# Pi 5 and close to a Jetson Orin's A78AE. Not qemu's default "max": with it (qemu 7.2) XNNPACK picks kernels
# for features no profiled device has (SVE2, i8mm, ...) and a ResNet50 int8 model's logits came out 36 off
# (benchmarks/RESULTS.md), where on neoverse-n1 they equal x86's bit for bit: an emulation artefact to avoid,
# not a device result.
DEFAULT_CPU = "neoverse-n1"
# How far a probability may move between x86 and aarch64, by the arithmetic the variant runs in
# (float32 and float16 variants run float32 kernels; every other variant quantizes activations):
# float32: XNNPACK's x86 (AVX-512/FMA) and NEON kernels sum in different orders; over ResNet50's ~50 layers
#   the logits of the PneumoniaMNIST run moved by up to 0.017 (measured), i.e. probabilities by < 1e-3;
#   2e-3 allows that with margin, half of the int8 step below, far inside what the compress gates accept.
# int8: integer arithmetic; measured bit-identical for that run's int8, but requantization may round one
#   step apart between kernels, and the softmax output moves in steps of 1/256: one output step is allowed.
TOLERANCE = {"float32": 2e-3, "int8": 1 / 256}
FLOAT_VARIANTS = ("float32", "float16")
# pip settings passed into the userland when set on the host (file:// indexes do not exist in there).
PIP_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
           "https_proxy", "http_proxy", "no_proxy")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_PIP_CONFIG = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"))


class CheckError(Exception):
    """A problem with the check's inputs or its machinery (not a disagreement): one line, exit 1."""


@dataclass
class Summary:
    """What OUT/summary.json holds; `failures` empty means arm64 agrees with x86."""

    ok: bool = False
    failures: list[str] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)
    userland: dict = field(default_factory=dict)
    install: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)  # "x86_64" / "aarch64" -> runtime_versions()
    tolerance: dict = field(default_factory=lambda: dict(TOLERANCE, cam_correlation=MIN_CAM_CORRELATION))
    comparisons: list[dict] = field(default_factory=list)
    integrity: dict = field(default_factory=dict)
    bench: dict = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        _validate(args)
    except CheckError as error:
        print(f"check_arm64: error: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    started = time.monotonic()
    try:
        if args.userland_only:
            _build_userland(args, summary, args.out / "userland")
        else:
            _check(args, summary)
    except CheckError as error:
        summary.failures.append(str(error))
        print(f"check_arm64: error: {error}", file=sys.stderr)
    summary.stages_s["total"] = round(time.monotonic() - started, 1)
    summary.ok = not summary.failures
    _write_json(args.out / "summary.json", asdict(summary))
    if args.userland_only:
        print(f"arm64 userland: {'built' if summary.ok else 'FAILED'} ({args.out / 'userland'}; "
              f"{summary.stages_s['total']} s)")
        for failure in summary.failures:
            print(f"  FAIL: {failure}")
    else:
        _print(summary, args.out)
    return 0 if summary.ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new (or empty) folder for the results")
    parser.add_argument("--userland-only", action="store_true",
                        help="only build OUT/userland (kept) for a later --userland; no models or images")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", type=Path, help="a compressed run: its float32, int8 and recommended variants")
    source.add_argument("--model", type=Path, action="append", help="a medtk .tflite (repeatable)")
    images = parser.add_mutually_exclusive_group()
    images.add_argument("--npz", type=Path, help="a MedMNIST .npz: its first --count test images are used")
    images.add_argument("--image", type=Path, action="append", help="an image file (repeatable)")
    parser.add_argument("--count", type=int, default=8, help="test images taken from --npz [default: 8]")
    parser.add_argument("--bench-runs", type=int, default=3, help="timed runs of the remote bench (at least 2) [default: 3]")
    parser.add_argument("--cpu", default=DEFAULT_CPU, help=f"CPU qemu emulates (QEMU_CPU) [default: {DEFAULT_CPU}]")
    parser.add_argument("--suite", default="bookworm", help="Debian suite of the userland [default: bookworm]")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian")
    parser.add_argument("--userland", type=Path, help="reuse this arm64 userland (made by an earlier --keep run)")
    parser.add_argument("--keep", action="store_true", help="keep OUT/userland for a later --userland")
    parser.add_argument("--floors", action="store_true",
                        help="install the base dependencies at the lowest versions pyproject allows (uv lowest-direct)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds any one step may take [default: 1800]")
    args = parser.parse_args(argv)
    if args.userland_only and (args.run or args.model or args.npz or args.image or args.userland):
        parser.error("--userland-only builds the userland alone: no --run, --model, --npz, --image or --userland")
    elif not args.userland_only and not ((args.run or args.model) and (args.npz or args.image)):
        parser.error("one of --run or --model, and one of --npz or --image, are required")
    return args


def _validate(args: argparse.Namespace) -> None:
    """Everything checkable before anything is created."""
    if os.geteuid() != 0:
        raise CheckError("needs root (debootstrap, chroot, mounts); run it as root or with sudo")
    for tool in ("debootstrap", "chroot", "mount", "umount", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise CheckError(f"{tool}: not found (apt-get install debootstrap qemu-user-static binfmt-support openssh-client)")
    if not Path("/usr/bin/qemu-aarch64-static").is_file():
        raise CheckError("/usr/bin/qemu-aarch64-static: not found (apt-get install qemu-user-static binfmt-support)")
    if args.out.exists() and any(args.out.iterdir()):
        raise CheckError(f"{args.out}: exists and is not empty; give a new folder")
    if args.count < 1 or args.bench_runs < 2:
        raise CheckError("--count must be at least 1 and --bench-runs at least 2 (bench's statistics need two runs)")
    if args.userland is not None and not (args.userland / "usr/bin/python3").exists():
        raise CheckError(f"{args.userland}: not an arm64 userland made by this check (no usr/bin/python3)")
    for path in [*(args.model or []), *(args.image or []), *filter(None, [args.run, args.npz])]:
        if not path.exists():
            raise CheckError(f"{path}: does not exist")
    if args.run is not None and not (args.run / "compress.json").is_file():
        raise CheckError(f"{args.run}: no compress.json (run `medtk compress {args.run}` first)")


def _check(args: argparse.Namespace, summary: Summary) -> None:
    inputs = args.out / "inputs"
    models = _signed_models(_models(args), inputs)
    images = _images(args, inputs / "images")
    root = args.userland or args.out / "userland"
    try:  # debootstrap mounts /proc in the userland itself: a failed or timed-out one is cleaned up too
        if args.userland is None:
            _build_userland(args, summary, root)
        else:
            _binfmt()
        _mount(root)
        with _timed(summary, "install"):
            _install(root, args, summary)
        with _timed(summary, "predict"):
            _predict(root, models, images, inputs / "key.pub.pem", args, summary)
        with _timed(summary, "bench"):
            _bench(root, models["int8" if "int8" in models else next(iter(models))], args, summary)
    finally:
        _unmount(root)
        if args.userland is None and not args.keep:
            _remove(root)


def _models(args: argparse.Namespace) -> dict[str, Path]:
    """Name -> model file: the run's float32, int8 and recommended variants, or the files given."""
    if args.model:
        return {path.stem: path for path in args.model}
    report = json.loads((args.run / "compress.json").read_text())
    entries = {entry["name"]: entry for entry in report["variants"]}
    wanted = ["float32", "int8", report.get("recommended")]
    chosen = {}
    for name in filter(None, wanted):
        if name not in entries:
            raise CheckError(f"{args.run}/compress.json: no variant {name!r} (has {', '.join(entries)})")
        chosen[name] = args.run / entries[name]["path"]
    return chosen


def _signed_models(models: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copies signed with a key made for this check (the device is given only its public half)."""
    from medtk.runtime.signing import generate_key_pair, sign_model

    folder.mkdir(parents=True)
    private, _ = generate_key_pair(folder / "key.pem")
    signed = {}
    for name, path in models.items():
        signed[name] = folder / f"{name}.tflite"
        signed[name].write_bytes(sign_model(path, private))
    return signed


def _images(args: argparse.Namespace, folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    if args.image:
        copies = [folder / f"{index}{path.suffix}" for index, path in enumerate(args.image)]
        for source, copy in zip(args.image, copies):
            shutil.copyfile(source, copy)
        return copies
    import cv2

    with np.load(args.npz) as data:
        test = data["test_images"][: args.count]
    paths = []
    for index, pixels in enumerate(test):
        paths.append(folder / f"test_{index:03d}.png")
        cv2.imwrite(str(paths[-1]), pixels)
    return paths


def _build_userland(args: argparse.Namespace, summary: Summary, root: Path) -> None:
    """debootstrap an arm64 Debian into `root`; whatever it left mounted is unmounted (the caller mounts
    what the check needs)."""
    try:
        with _timed(summary, "userland"):
            _binfmt()
            _run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={PACKAGES}", args.suite, root,
                  args.mirror], args.timeout, "debootstrap")
    finally:
        _unmount(root)


def _binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc (fixed binary, so chroots need no copy of qemu)."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "status").exists():
        _run(["mount", "binfmt_misc", "-t", "binfmt_misc", misc], 60, "mount binfmt_misc")
    if not (misc / "qemu-aarch64").exists():
        _run(["update-binfmts", "--enable", "qemu-aarch64"], 60, "update-binfmts")
    if not (misc / "qemu-aarch64").exists():
        raise CheckError(f"{misc}/qemu-aarch64: not registered (is qemu-user-static installed?)")


MOUNTS = (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"]), ("dev/pts", ["--bind", "/dev/pts"]))


def _mount(root: Path) -> None:
    """/proc and /dev as on a device; /sys is not the host's (x86 sysfs makes XNNPACK's cpuinfo pick kernels that
    crash under qemu), only the CPU lists cpuinfo needs, without which LiteRT silently runs without XNNPACK."""
    cpus = root / "sys/devices/system/cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpus / name).write_text(f"0-{(os.cpu_count() or 1) - 1}\n")
    for target, how in MOUNTS:
        if subprocess.run(["mountpoint", "-q", root / target]).returncode != 0:
            _run(["mount", *how, root / target], 60, f"mount {target}")


def _mounts_under(root: Path) -> list[Path]:
    """Mount points inside the userland, deepest first: ours (MOUNTS) and any debootstrap left behind."""
    inside = Path(os.path.realpath(root))
    points = [Path(line.split()[1].encode().decode("unicode_escape")) for line in Path("/proc/self/mounts").read_text().splitlines()]
    return sorted((point for point in points if point.is_relative_to(inside) and point != inside),
                  key=lambda point: len(point.parts), reverse=True)


def _unmount(root: Path) -> None:
    for point in _mounts_under(root):
        subprocess.run(["umount", "--lazy", point], check=False)


def _remove(root: Path) -> None:
    """Delete the userland, never through a mount: /dev is the host's own, bound in."""
    if left := _mounts_under(root):
        raise CheckError(f"{root}: still mounted ({', '.join(map(str, left))}); not removed, unmount it by hand")
    shutil.rmtree(root, ignore_errors=True)


def _install(root: Path, args: argparse.Namespace, summary: Summary) -> None:
    """`pip install medtk-*.whl` in a fresh venv in the userland, as a device would; what pip chose."""
    wheels = args.out / "wheel"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, REPO], args.timeout, "pip wheel")
    (wheel,) = wheels.glob("medtk-*.whl")
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    if HOST_CA_BUNDLE.is_file():
        shutil.copyfile(HOST_CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
    for config in HOST_PIP_CONFIG:
        if config.is_dir():
            shutil.copytree(config, root / config.relative_to("/"), dirs_exist_ok=True)
        elif config.is_file():
            shutil.copyfile(config, root / config.relative_to("/"))
    work = root / WORK.lstrip("/")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(wheel, work / wheel.name)
    shutil.rmtree(root / VENV.lstrip("/"), ignore_errors=True)
    _chroot(root, ["python3", "-m", "venv", VENV], args, "venv")
    empty = _du(root / VENV.lstrip("/"))
    if args.floors:  # as tests/runtime/test_install.py does on x86: pyproject's base list at its lowest versions
        (work / "floors.txt").write_text("\n".join(_base_requirements(wheel)) + "\n")
        _chroot(root, [f"{VENV}/bin/python", "-m", "pip", "install", "--quiet", "uv"], args, "pip install uv (arm64)")
        uv = ["env", "UV_NATIVE_TLS=1", f"{VENV}/bin/uv", "pip", "install", "--quiet", "--python", f"{VENV}/bin/python"]
        _chroot(root, [*uv, "--resolution", "lowest-direct", "-r", f"{WORK}/floors.txt"], args,
                "uv pip install the floors (arm64)")  # UV_NATIVE_TLS: the CA bundle copied in, as pip uses
        _chroot(root, [*uv, "--no-deps", f"{WORK}/{wheel.name}"], args, "uv pip install medtk --no-deps (arm64)")
    else:
        _chroot(root, [f"{VENV}/bin/python", "-m", "pip", "install", "--quiet", f"{WORK}/{wheel.name}"], args,
                "pip install medtk (arm64)")
    listed = _chroot(root, [f"{VENV}/bin/python", "-m", "pip", "list", "--format=json"], args, "pip list")
    packages = {row["name"]: row["version"] for row in json.loads(listed)}
    found = _chroot(root, [f"{VENV}/bin/python", "-c", "import importlib.util as u; print([m for m in "
                           "('tensorflow', 'tf_keras', 'tensorflow_model_optimization') if u.find_spec(m)])"],
                    args, "find TensorFlow")
    machine = _chroot(root, [f"{VENV}/bin/python", "-c", "import platform; print(platform.machine(), "
                             "platform.python_version(), platform.libc_ver()[1])"], args, "python").split()
    summary.userland = {"suite": args.suite, "emulated_cpu": args.cpu, "machine": machine[0], "python": machine[1], "glibc": machine[2],
                        "packages_debootstrap": PACKAGES}
    summary.install = {"wheel": wheel.name, "resolution": "lowest-direct (the floors)" if args.floors else "pip's newest",
                       "packages": packages, "tensorflow_modules": json.loads(found.replace("'", '"')),
                       "installed_bytes": _du(root / VENV.lstrip("/")) - empty, "venv_bytes": _du(root / VENV.lstrip("/"))}
    if machine[0] != "aarch64":
        summary.failures.append(f"the userland's Python reports {machine[0]}, not aarch64")
    if summary.install["tensorflow_modules"]:
        summary.failures.append(f"the base install pulled {summary.install['tensorflow_modules']}")


def _base_requirements(wheel: Path) -> list[str]:
    """The wheel's own Requires-Dist without extras (not the host's installed metadata, which can be older)."""
    import zipfile
    from email.parser import Parser

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    return [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]


def _predict(root: Path, models: dict[str, Path], images: list[Path], key: Path, args, summary: Summary) -> None:
    """The probe on both machines, then the comparison."""
    work = root / WORK.lstrip("/")
    for path in [*models.values(), *images, key, PROBE]:
        shutil.copyfile(path, work / path.name)
    inside = lambda paths: [f"{WORK}/{path.name}" for path in paths]  # noqa: E731
    probe_args = ["--trusted-key", f"{WORK}/{key.name}",
                  *sum((["--model", m] for m in inside(models.values())), []),
                  *sum((["--image", i] for i in inside(images)), [])]
    _chroot(root, [f"{VENV}/bin/python", f"{WORK}/{PROBE.name}", "--out", f"{WORK}/arm64", *probe_args], args,
            "probe (arm64)")
    shutil.copytree(work / "arm64", args.out / "arm64")
    host_args = ["--trusted-key", key, *sum((["--model", m] for m in models.values()), []),
                 *sum((["--image", i] for i in images), [])]
    _run([sys.executable, PROBE, "--out", args.out / "x86_64", *host_args], args.timeout, "probe (x86_64)")
    x86, arm = (_load_probe(args.out / name) for name in ("x86_64", "arm64"))
    summary.runtime = {"x86_64": x86[0]["runtime"], "aarch64": arm[0]["runtime"]}
    summary.comparisons, summary.integrity, failures = compare(x86, arm)
    summary.failures.extend(failures)


def _load_probe(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(folder / "cams.npz") as cams:
        return json.loads((folder / "probe.json").read_text()), {key: cams[key] for key in cams.files}


def compare(x86: tuple[dict, dict], arm: tuple[dict, dict]) -> tuple[list[dict], dict, list[str]]:
    """Per model and image: labels, the largest probability difference against its tolerance, CAM correlation."""
    (x_doc, x_cams), (a_doc, a_cams) = x86, arm
    rows, failures, integrity = [], [], {}
    for name, x_model in x_doc["models"].items():
        a_model = a_doc["models"][name]
        tolerance = TOLERANCE["float32" if x_model["variant"] in FLOAT_VARIANTS else "int8"]
        integrity[name] = {"x86_64": x_model["verification"], "aarch64": a_model["verification"]}
        if a_model["verification"] != "signed" or x_model["verification"] != "signed":
            failures.append(f"{name}: signature not verified ({integrity[name]})")
        for index, (xp, ap) in enumerate(zip(x_model["predictions"], a_model["predictions"], strict=True)):
            diff = max(abs(xp["probabilities"][c] - ap["probabilities"][c]) for c in xp["probabilities"])
            correlation = cam_correlation(x_cams[f"{name}/{index}"], a_cams[f"{name}/{index}"])
            row = {"model": name, "variant": x_model["variant"], "precision": x_model["precision"], "image": xp["image"],
                   "label_x86_64": xp["label"], "label_aarch64": ap["label"], "threshold": xp["threshold"],
                   "max_abs_prob_diff": diff, "tolerance": tolerance, "cam_correlation": correlation}
            rows.append(row)
            if xp["label"] != ap["label"] or diff > tolerance or correlation < MIN_CAM_CORRELATION:
                failures.append(f"{name} on {xp['image']}: labels {xp['label']}/{ap['label']}, |dp| {diff:.3g} "
                                f"(tolerance {tolerance:.3g}), CAM correlation {correlation:.5f}")
        x_cli, a_cli = x_model["cli"], a_model["cli"]
        if a_cli["exit_code"] != 0 or x_cli["exit_code"] != 0:
            failures.append(f"{name}: medtk predict --json failed: {a_cli.get('stderr') or x_cli.get('stderr')}")
        elif [r["label"] for r in x_cli["predictions"]] != [r["label"] for r in a_cli["predictions"]]:
            failures.append(f"{name}: medtk predict --json labels differ between x86_64 and aarch64")
        elif a_cli["runtime"]["machine"] != "aarch64":
            failures.append(f"{name}: medtk predict --json on the userland says {a_cli['runtime']['machine']}")
    for machine, doc in (("x86_64", x_doc), ("aarch64", a_doc)):
        integrity[f"tampered_refused_{machine}"] = doc["tampered"]["refused"]
        if not doc["tampered"]["refused"]:
            failures.append(f"{machine}: a model with one flipped byte was not refused")
    return rows, integrity, failures


def cam_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two CAMs; two identical flat maps count as 1 (nothing to disagree on)."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _bench(root: Path, model: Path, args: argparse.Namespace, summary: Summary) -> None:
    """`medtk bench --host` from the host into an sshd inside the userland (loopback port)."""
    keys = Path(tempfile.mkdtemp(prefix="medtk-arm64-ssh-"))
    ssh_dir = root / "etc/ssh/medtk_check"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    for key in ("host_key", "client_key"):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / key], 60, "ssh-keygen")
    shutil.copyfile(keys / "host_key", ssh_dir / "host_key")
    (ssh_dir / "host_key").chmod(0o600)
    shutil.copyfile(keys / "client_key.pub", ssh_dir / "authorized_keys")
    port = _free_port()
    (ssh_dir / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey /etc/ssh/medtk_check/host_key\n"
        "AuthorizedKeysFile /etc/ssh/medtk_check/authorized_keys\nPidFile /run/medtk_check_sshd.pid\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nSetEnv QEMU_CPU={args.cpu}\n"
        "Subsystem sftp internal-sftp\n"  # scp in OpenSSH 9 speaks SFTP
    )
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    options = [f"IdentityFile={keys / 'client_key'}", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
               "LogLevel=ERROR", "IdentitiesOnly=yes", "ConnectTimeout=60"]
    server = subprocess.Popen(["chroot", root, "/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/medtk_check/sshd_config"],
                              stderr=subprocess.PIPE, text=True, env=_chroot_env(args.cpu))
    try:
        _wait_for_ssh(port, options, server)
        out = args.out / "bench.json"
        command = [Path(sys.executable).with_name("medtk"), "bench", model, "--host", "root@127.0.0.1", "--ssh-port", port,
                   *sum((["--ssh-option", o] for o in options), []), "--remote-python", f"{VENV}/bin/python",
                   "--threads", "1", "--runs", args.bench_runs, "--warmup", "1", "--json", out]
        _run(command, args.timeout, "medtk bench --host (sshd in the userland)")
        result = json.loads(out.read_text())["results"][0]
        summary.bench = {"model": result["model"], "where": result["where"], "machine": result["machine"]["machine"],
                         "backend": result["backend"], "bare_p50_ms_under_emulation": result["bare"]["p50_ms"],
                         "end_to_end_p50_ms_under_emulation": result["end_to_end"]["p50_ms"],
                         "note": "latency under qemu-user emulation: says nothing about a real arm64 device"}
        if result["machine"]["machine"] != "aarch64" or result["where"]["mode"] != "remote":
            summary.failures.append(f"medtk bench --host ran on {result['machine']['machine']} ({result['where']['mode']})")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(keys, ignore_errors=True)


def _wait_for_ssh(port: int, options: list[str], server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120  # sshd under emulation starts in seconds; a loaded host needs more
    while True:
        probe = subprocess.run(["ssh", "-o", "BatchMode=yes", *sum((["-o", o] for o in options), []), "-p", str(port),
                                "root@127.0.0.1", "true"], capture_output=True, text=True, timeout=120)
        if probe.returncode == 0:
            return
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise CheckError(f"sshd in the userland did not accept the key: {probe.stderr.strip()[-300:]} "
                             f"{(server.stderr.read() if server.stderr else '')[-300:]}")
        time.sleep(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _chroot_env(cpu: str) -> dict[str, str]:
    """A device's environment: nothing of the host's venv or file:// pip indexes, its proxies and indexes kept."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "QEMU_CPU": cpu}
    env.update({key: value for key in PIP_ENV if (value := os.environ.get(key)) and "file:" not in value})
    return env


def _chroot(root: Path, command: list, args: argparse.Namespace, what: str) -> str:
    """Run `command` in the userland as a device would, on the emulated `args.cpu`."""
    return _run(["chroot", root, *command], args.timeout, what, env=_chroot_env(args.cpu))


def _run(command: list, timeout: int, what: str, env: dict | None = None) -> str:
    """Run a step; its failure or timeout is one line naming the step and the end of its stderr."""
    # Its own process group: on a timeout every process the step started is killed (debootstrap runs a tree).
    with subprocess.Popen([str(part) for part in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise CheckError(f"{what}: timed out after {timeout} s") from None
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise CheckError(f"{what}: exit {done.returncode}: {tail}")
    return done.stdout


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


class _timed:
    """Records a stage's wall time in the summary, even when it fails."""

    def __init__(self, summary: Summary, stage: str) -> None:
        self.summary, self.stage = summary, stage

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(self, *exc) -> None:
        self.summary.stages_s[self.stage] = round(time.monotonic() - self.start, 1)


def _write_json(path: Path, document: dict) -> None:
    """Atomic: a reader never sees half a summary."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


def _print(summary: Summary, out: Path) -> None:
    verdict = "AGREES with x86_64" if summary.ok else "FAILED"
    print(f"arm64 check: {verdict} ({out / 'summary.json'})")
    print("  stages (s): " + ", ".join(f"{k} {v}" for k, v in summary.stages_s.items()))
    for machine, versions in summary.runtime.items():
        print(f"  {machine}: ai-edge-litert {versions['litert']}, numpy {versions['numpy']}, Python {versions['python']}")
    if summary.install:
        print(f"  installed: {summary.install['installed_bytes'] / 1e6:.0f} MB; TensorFlow: {summary.install['tensorflow_modules'] or 'none'}")
    for row in summary.comparisons:
        print(f"  {row['model']:<12} {row['image']:<14} {row['label_x86_64']}/{row['label_aarch64']} "
              f"|dp| {row['max_abs_prob_diff']:.2e} (<= {row['tolerance']:.2e}) CAM r {row['cam_correlation']:.6f}")
    for failure in summary.failures:
        print(f"  FAIL: {failure}")


if __name__ == "__main__":
    sys.exit(main())
