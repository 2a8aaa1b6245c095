"""`ServeConfig` bounds and `--forward` parsing."""

from __future__ import annotations

import pytest

from medtk.errors import ConfigError
from medtk.serve.config import Destination, ServeConfig


def test_destination_parse():
    d = Destination.parse("PACS@127.0.0.1:4242")
    assert (d.ae_title, d.host, d.port, str(d)) == ("PACS", "127.0.0.1", 4242, "PACS@127.0.0.1:4242")
    assert Destination.parse("V@[::1]:104").host == "::1"
    assert "/" not in Destination.parse("A B@host:1").slug


@pytest.mark.parametrize("text", ["PACS", "PACS@host", "@host:1", "WAYTOOLONGAETITLE1@h:1", "P@h:0", "P@h:70000"])
def test_destination_parse_refuses(text):
    with pytest.raises(ConfigError, match="--forward"):
        Destination.parse(text)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"queue_size": 0}, "--queue-size 0"),
        ({"workers": 100}, "--workers 100"),
        ({"max_body_bytes": 10}, "--max-body-bytes"),
        ({"ae_title": "A\\B"}, "--ae-title"),
        ({"http_port": None, "dicom_port": None}, "both the HTTP and the DICOM listener"),
        ({"tls_cert": "cert.pem"}, "--tls-cert and --tls-key go together"),
        ({"retry_initial_seconds": 5, "retry_max_seconds": 1}, "retry backoff"),
    ],
)
def test_bounds(tmp_path, override, message):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match=message):
        ServeConfig(model=model, **override).validate()


def test_token_file(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    token = tmp_path / "token"
    token.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        ServeConfig(model=model, token_file=token).token()
    token.write_text("0123456789abcdef0123\n")
    assert ServeConfig(model=model, token_file=token).token() == "0123456789abcdef0123"


def test_interpreter_threads_share_out_the_cpus(tmp_path):
    from medtk.runtime.backend import default_threads

    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert ServeConfig(model=model, workers=2).interpreter_threads() == max(1, default_threads() // 2)
    assert ServeConfig(model=model, workers=64 // 4).interpreter_threads() == max(1, default_threads() // 16)
    assert ServeConfig(model=model, workers=2, threads=1).interpreter_threads() == 1
