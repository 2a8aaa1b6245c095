import subprocess
import sys


def test_worker_peak_rss_is_its_own_not_the_parents():
    """ru_maxrss survives fork + exec on Linux; the worker must not report a big parent's peak."""
    parent = (
        "import subprocess, sys; ballast = bytearray(600 * 1024 * 1024); ballast[::4096] = b'x' * len(ballast[::4096]); "
        "print(subprocess.run([sys.executable, '-c', 'from medtk.runtime.bench_worker import _rss_mb; print(_rss_mb())'],"
        " capture_output=True, text=True, check=True).stdout)"
    )
    reported = float(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout)
    assert 5 < reported < 300
