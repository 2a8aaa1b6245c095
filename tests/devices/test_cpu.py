"""The CPU a run records: parsed from /proc/cpuinfo's text."""

from medtk.devices.cpu import read_cpu

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6338
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6338
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni
"""


def test_model_flags_cpus_and_clock_are_read(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    cpu = read_cpu(path)
    assert cpu.model == "Intel(R) Xeon(R) Gold 6338" and cpu.mhz == 2000.0 and cpu.logical_cpus == 2
    assert cpu.flags == ("avx2", "avx512f", "avx512_vnni") and not cpu.bfloat16
    assert "avx512_vnni" in cpu.describe() and 1 <= cpu.usable_cpus


def test_a_missing_cpuinfo_still_names_a_cpu(tmp_path):
    cpu = read_cpu(tmp_path / "absent")
    assert cpu.model and cpu.flags == () and cpu.mhz is None and cpu.logical_cpus >= 1
