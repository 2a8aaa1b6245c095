import pytest

from medtk.devices import list_profiles, load_profile, resolve_profile
from medtk.devices.registry import ENGINES, REFERENCE_PRECISIONS, parse_profile
from medtk.errors import ConfigError

EXPECTED = {
    "jetson-nano", "jetson-xavier-nx", "jetson-orin-nano", "jetson-agx-orin",
    "raspberry-pi-4", "raspberry-pi-5", "coral-dev-board", "x86-host",
}


def test_every_shipped_profile_loads():
    assert {profile.name for profile in list_profiles()} == EXPECTED


@pytest.mark.parametrize("profile", list_profiles(), ids=lambda p: p.name)
def test_profile_is_complete_and_sourced(profile):
    assert profile.cpu.cores >= 1 and profile.cpu.freq_ghz > 0 and profile.memory_mb > 0
    assert 1 <= profile.default_threads <= profile.cpu.cores
    assert profile.delegates and profile.description
    assert profile.cpu_references(), "estimates need a CPU reference"
    for ref in profile.references:
        assert ref.source.strip() and ref.latency_ms > 0 and ref.macs > 0
        if ref.kind == "derived":
            assert ref.derived_from and "approximate" in ref.note.lower()
        assert ref.engine in ENGINES and ref.precision in REFERENCE_PRECISIONS, ref
        if ref.engine in ("tensorrt", "edgetpu"):
            assert ref.accelerator, ref
    # an estimate for a medtk model scales only LiteRT figures measured on the CPU
    assert all(ref.engine == "litert" and not ref.accelerator for ref in profile.cpu_references())


def test_no_litert_gpu_delegate_on_jetson():
    """LiteRT's GPU delegate is for mobile GPUs (OpenCL/OpenGL ES); JetPack's GPU is TensorRT's (DESIGN.md)."""
    from medtk.runtime.bench.runner import _delegate_for

    jetsons = [profile for profile in list_profiles() if profile.name.startswith("jetson")]
    assert len(jetsons) == 4
    for profile in jetsons:
        assert "gpu" not in profile.delegates, profile.name
        assert _delegate_for(profile) == "cpu"  # `medtk bench --device jetson...` on the device measures LiteRT's CPU
        assert all(ref.engine == "litert" for ref in profile.cpu_references())
    nano = {(ref.engine, ref.accelerator): ref for ref in load_profile("jetson-nano").references}
    assert nano[("tensorrt", "gpu")].precision == "float16" and "TensorRT" in nano[("tensorrt", "gpu")].source


def test_a_reference_says_what_produced_it():
    derived = load_profile("jetson-orin-nano").cpu_references()[0]
    assert derived.describe() == "litert on the CPU, precision unstated, derived from raspberry-pi-5"
    tensorrt = next(ref for ref in load_profile("jetson-nano").references if ref.engine == "tensorrt")
    assert tensorrt.describe() == "tensorrt on the gpu, precision float16, published"


def test_alias_resolves_and_says_which_profile():
    resolved = resolve_profile("jetson")
    assert resolved.profile.name == "jetson-orin-nano"
    assert resolved.via_alias
    assert "jetson-orin-nano" in resolved.describe()
    assert load_profile("Coral").name == "coral-dev-board"
    assert not resolve_profile("raspberry-pi-4").via_alias


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match=r"unknown device profile 'jetson-nan'.*did you mean jetson-nano"):
        load_profile("jetson-nan")


VALID = (
    'name = "x"\naliases = []\ndescription = "d"\nmemory_mb = 1\naccelerators = []\ndelegates = ["xnnpack"]\n'
    'default_threads = 1\n[cpu]\nmodel = "m"\ncores = 1\narch = "a"\nfreq_ghz = 1.0\n'
    '[[reference]]\nmodel = "m"\ninput_size = 1\nprecision = "int8"\nlatency_ms = 1.0\nthreads = 1\n'
    'macs = 1.0\nkind = "published"\nengine = "litert"\nsource = "https://example.org/figures"\n'
)


def test_a_valid_profile_parses():
    assert parse_profile(VALID, "x.toml").cpu_references()[0].source == "https://example.org/figures"


def test_unknown_key_in_a_profile_is_an_error_with_a_suggestion():
    text = VALID.replace("description =", "descripton =")
    with pytest.raises(ConfigError, match=r"demo.toml: unknown key 'descripton' \(did you mean 'description'\?\)"):
        parse_profile(text, "demo.toml")


def test_reference_without_engine_or_with_an_unknown_one_is_refused():
    for text in (VALID.replace('engine = "litert"\n', ""), VALID.replace('engine = "litert"', 'engine = "tflite-gpu"')):
        with pytest.raises(ConfigError, match=r"x.toml: reference 'm': unknown engine '(|tflite-gpu)'; known: litert, "):
            parse_profile(text, "x.toml")


def test_tensorrt_figure_must_name_its_accelerator_and_is_no_cpu_reference():
    text = VALID + VALID[VALID.index("[[reference]]"):].replace('engine = "litert"', 'engine = "tensorrt"')
    with pytest.raises(ConfigError, match=r"a tensorrt figure ran on an accelerator; name it"):
        parse_profile(text, "x.toml")
    profile = parse_profile(text.replace('engine = "tensorrt"', 'engine = "tensorrt"\naccelerator = "gpu"'), "x.toml")
    assert [ref.engine for ref in profile.cpu_references()] == ["litert"]


def test_unknown_reference_precision_is_refused():
    with pytest.raises(ConfigError, match=r"unknown precision 'fp8'; known: float32, float16, int8, unstated"):
        parse_profile(VALID.replace('precision = "int8"', 'precision = "fp8"'), "x.toml")


def test_reference_without_source_is_refused():
    text = VALID.replace('source = "https://example.org/figures"', 'source = " "')
    with pytest.raises(ConfigError, match="needs kind .* and a source"):
        parse_profile(text, "x.toml")


def test_an_integer_only_accelerator_says_what_it_runs():
    """Compress recommends for the target: the Edge TPU runs full-integer models only (issue 22)."""
    assert load_profile("coral").runs == ("int8",)
    for profile in list_profiles():
        if "edgetpu" in profile.delegates:
            assert profile.runs == ("int8",), profile.name
    assert load_profile("jetson-orin-nano").runs == ()  # a GPU and CPU run any precision
    assert parse_profile(VALID, "x.toml").runs == ()


def test_an_unknown_precision_in_runs_is_refused():
    with pytest.raises(ConfigError, match=r"x.toml: runs: unknown precision 'int4'; known: float32, int8"):
        parse_profile(VALID.replace("default_threads = 1\n", 'default_threads = 1\nruns = ["int4"]\n'), "x.toml")
