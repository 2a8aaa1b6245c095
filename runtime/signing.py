"""Optional authenticity: ed25519 signatures of exported models with a key the hospital holds.

The signature lives in the model's own seal slot (integrity.py), so the signed model is still one
`.tflite` file and signing it changes no other byte. The runtime verifies it when the integrator
passes public keys (`Classifier(..., trusted_keys=[...])`, `medtk predict --trusted-key FILE`) and
then refuses unsigned models and models signed by any other key.

Why `cryptography` and not OpenSSF `model-signing`: model-signing writes a Sigstore bundle *beside* the
model (a second file that must travel with it) and brings the sigstore client stack with it; we need
the signature inside the single file and a small verifier on devices. `cryptography` is one
maintained dependency with wheels for the aarch64 devices we profile, imported only here.

Keys are PEM files: PKCS#8 private keys (`medtk sign --generate-key KEY.pem`, or
`openssl genpkey -algorithm ed25519 -out KEY.pem`) and SubjectPublicKeyInfo public keys
(`openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

from medtk.errors import ConfigError, ModelError
from medtk.runtime import integrity
from medtk.runtime.container import load
from medtk.runtime.messages import first_line

KeySource = str | Path | bytes | Any  # a PEM file, PEM bytes, or a cryptography key object
METADATA_NAME = "medtk"  # metadata.METADATA_NAME (not imported: metadata imports this package's integrity)


def generate_key_pair(private_path: Path) -> tuple[Path, Path]:
    """Write a new ed25519 private key (PEM, mode 0600) and its public key beside it (`<stem>.pub.pem`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(private_path)
    public_path = private_path.with_name(f"{private_path.stem}.pub.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path}: already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(source: KeySource):
    """An ed25519 private key from a PEM file or PEM bytes (unencrypted PKCS#8)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(source, Ed25519PrivateKey):
        return source
    data, label = _pem(source, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{label}: not an unencrypted PEM private key ({first_line(error)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{label}: a {type(key).__name__}; medtk signs with ed25519 keys only")
    return key


def load_public_key(source: KeySource):
    """An ed25519 public key from a PEM file or PEM bytes (a private key's public half is accepted too)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    data, label = _pem(source, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{label}: not a PEM public key ({first_line(error)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{label}: a {type(key).__name__}; medtk verifies ed25519 keys only")
    return key


def key_id(public_key) -> str:
    """16 hex digits naming a public key: the first 8 bytes of the sha256 of its raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_model(model: str | Path | bytes, private_key: KeySource) -> bytes:
    """The model's bytes with an ed25519 signature in its seal; refuses a model whose seal does not verify
    (signing a corrupted or altered file would vouch for it) or that has no seal (export it again)."""
    key = load_private_key(private_key)
    data, label = load(model)
    found = integrity.read_seal(data, METADATA_NAME, label)
    if found is None:
        raise ModelError(f"{label}: no medtk seal to sign (exported by another tool or an older medtk); re-export it")
    integrity.verify(data, METADATA_NAME, label)
    sealed, start = found
    signed = integrity.Seal(sha256=sealed.sha256, signature=key.sign(sealed.message()), key_id=key_id(key.public_key()))
    return integrity.fill(data, start, signed)


def check_signature(sealed: integrity.Seal | None, trusted_keys: Iterable, label: str) -> str:
    """The key id that signed the model; a `ModelError` when it is unsigned or no trusted key verifies it."""
    from cryptography.exceptions import InvalidSignature

    keys = [load_public_key(key) for key in trusted_keys]
    if sealed is None:
        raise ModelError(f"{label}: not sealed by medtk, so it cannot be signed; refused (trusted keys were given)")
    if not sealed.signed:
        raise ModelError(f"{label}: unsigned model refused (trusted keys were given); sign it with `medtk sign`")
    matching = [key for key in keys if key_id(key) == sealed.key_id]
    if not matching:
        raise ModelError(f"{label}: signed by key {sealed.key_id}, which is not one of the trusted keys; refused")
    for key in matching:
        try:
            key.verify(sealed.signature, sealed.message())
            return sealed.key_id
        except InvalidSignature:
            continue
    raise ModelError(f"{label}: invalid signature for key {sealed.key_id} (the file was altered); refused")


def _pem(source: KeySource, what: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), what
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
