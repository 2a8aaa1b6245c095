"""`medtk sign`: put an ed25519 signature inside an exported `.tflite` or `.onnx` (or make a key pair to sign with).

    medtk sign --generate-key hospital.pem          # writes hospital.pem (0600) and hospital.pub.pem
    medtk sign model_int8.tflite --key hospital.pem # signs in place (atomically); --out for a copy
    medtk predict model_int8.tflite scan.dcm --trusted-key hospital.pub.pem

OpenSSL keys work too: `openssl genpkey -algorithm ed25519 -out KEY.pem` and
`openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def sign(
    model: Annotated[Optional[Path], typer.Argument(help="The medtk .tflite or .onnx model to sign.")] = None,
    key: Annotated[Optional[Path], typer.Option("--key", help="ed25519 private key (PEM, PKCS#8, unencrypted).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the signed model here [default: replace MODEL].")] = None,
    generate_key: Annotated[
        Optional[Path],
        typer.Option("--generate-key", help="Write a new private key here (and its public key as <stem>.pub.pem), then exit."),
    ] = None,
) -> None:
    """Sign a model so `medtk predict --trusted-key` and `Classifier(trusted_keys=...)` accept it."""
    from medtk.errors import ConfigError

    if generate_key is not None:
        if model is not None or key is not None or out is not None:
            raise ConfigError("--generate-key makes a key pair only; sign with `medtk sign MODEL --key KEY` afterwards")
        from medtk.runtime.signing import generate_key_pair

        private, public = generate_key_pair(generate_key)
        typer.echo(f"wrote {private} (private: keep it off devices) and {public} (give this to integrators)")
        return
    if model is None or key is None:
        raise ConfigError("give MODEL and --key PRIVATE.pem (or --generate-key KEY.pem to make a key pair)")
    from medtk.errors import MedtkError
    from medtk.io import atomic_write_bytes
    from medtk.runtime.signing import key_id, load_private_key, sign_model

    if model.is_dir():
        raise MedtkError(f"{model}: is a directory, not a model file")
    if not model.is_file():
        raise MedtkError(f"{model}: no such model file")
    private = load_private_key(key)
    signed = sign_model(model, private)
    target = out or model
    try:
        atomic_write_bytes(target, signed)
    except OSError as error:
        raise MedtkError(f"{target}: cannot write the signed model ({error.strerror or error})") from None
    typer.echo(f"signed {target} with key {key_id(private.public_key())}")
