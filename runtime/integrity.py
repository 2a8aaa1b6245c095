"""The seal: one integrity digest over the whole model file and an optional signature, both inside it.

The same for both formats (container.py): the metadata JSON is a named flatbuffer buffer in a `.tflite`
and a `metadata_props` value in an `.onnx` (onnx_file.py); either way the slot is found as bytes.

Where it lives: the medtk metadata JSON (metadata.py) has a top-level key `seal` whose value is a
fixed-length ASCII slot

    medtk-seal/1 sha256=<64 hex> ed25519=<128 hex or '-'*128> key=<16 hex or '-'*16>

Canonical form: the file's bytes with that slot's characters replaced by '0' (the placeholder the file
was packed with). `sha256` is the digest of the canonical form, so it covers everything that changes
what the model computes or says - graph, tensor shapes and types, quantization parameters, weights,
every other metadata field (labels, threshold, positive class, input size, intensity mapping), even
padding - and excludes only the slot that holds it. The slot's length is fixed, so sealing and signing
fill it in place: the flatbuffer is packed once and never re-laid-out afterwards.

The signature (signing.py) is ed25519 over `medtk-seal/1 sha256=<digest>`, so it covers what the
digest covers; `key` is the first 8 bytes (hex) of the sha256 of the raw public key, to pick the
trusted key to verify with. A digest anyone can recompute catches corruption; only the signature
catches someone who edits the file and recomputes the digest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable

from medtk.errors import ModelError
from medtk.runtime.container import embed_document, metadata_span, model_format

SEAL_VERSION = "medtk-seal/1"
SEAL_KEY = "seal"
UNSIGNED_SIGNATURE = "-" * 128
UNSIGNED_KEY = "-" * 16
SLOT_LENGTH = len(f"{SEAL_VERSION} sha256={'0' * 64} ed25519={UNSIGNED_SIGNATURE} key={UNSIGNED_KEY}")
PLACEHOLDER = "0" * SLOT_LENGTH
_PATTERN = re.compile(
    rf"{re.escape(SEAL_VERSION)} sha256=([0-9a-f]{{64}}) ed25519=([0-9a-f]{{128}}|-{{128}}) key=([0-9a-f]{{16}}|-{{16}})"
)
_KEY_BYTES = f'"{SEAL_KEY}": "'.encode("ascii")  # how json.dumps(indent=...) writes the key


@dataclass(frozen=True)
class Seal:
    """A parsed slot: the digest, and the signature with its key id when the model is signed."""

    sha256: str
    signature: bytes | None = None
    key_id: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def text(self) -> str:
        signature = self.signature.hex() if self.signature is not None else UNSIGNED_SIGNATURE
        return f"{SEAL_VERSION} sha256={self.sha256} ed25519={signature} key={self.key_id or UNSIGNED_KEY}"

    @classmethod
    def parse(cls, text: str, label: str = "model") -> "Seal":
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise ModelError(f"{label}: malformed integrity seal in the medtk metadata (the file was altered)")
        digest, signature, key = match.groups()
        if (signature == UNSIGNED_SIGNATURE) != (key == UNSIGNED_KEY):
            raise ModelError(f"{label}: malformed integrity seal (signature and key id disagree; the file was altered)")
        if signature == UNSIGNED_SIGNATURE:
            return cls(sha256=digest)
        return cls(sha256=digest, signature=bytes.fromhex(signature), key_id=key)

    def message(self) -> bytes:
        """What the signature signs."""
        return signed_message(self.sha256)


def signed_message(digest: str) -> bytes:
    return f"{SEAL_VERSION} sha256={digest}".encode("ascii")


def seal(model: bytes, name: str, render: Callable[[str], bytes]) -> bytes:
    """Embed the named buffer `render(PLACEHOLDER)` (JSON whose top-level `seal` is the placeholder),
    then fill the slot with the digest of the result. Any earlier buffer of that name is replaced."""
    model_format(model)
    packed = embed_document(model, name, render(PLACEHOLDER))
    start = slot_offset(packed, name, "model")
    if start is None or packed[start : start + SLOT_LENGTH] != PLACEHOLDER.encode("ascii"):
        raise ValueError(f"the {name!r} buffer must hold the seal placeholder exactly once, as a top-level key")
    return fill(packed, start, Seal(sha256=canonical_sha256(packed, start)))


def slot_offset(model: bytes, name: str, label: str) -> int | None:
    """Where the seal slot starts in the file, or None when the named buffer has no seal key.

    The key must appear exactly once in the buffer, followed by a full-length string: two (a nested
    or duplicated key) or a short one is an altered file.
    """
    span = metadata_span(model, name, label)
    if span is None:
        return None
    start, end = span
    data = model[start:end]
    first = data.find(_KEY_BYTES)
    if first < 0:
        return None
    if data.find(_KEY_BYTES, first + 1) >= 0:
        raise ModelError(f"{label}: the medtk metadata holds more than one seal (the file was altered)")
    slot = first + len(_KEY_BYTES)
    if data[slot + SLOT_LENGTH : slot + SLOT_LENGTH + 1] != b'"':
        raise ModelError(f"{label}: malformed integrity seal in the medtk metadata (the file was altered)")
    return start + slot


def canonical_sha256(model: bytes, start: int) -> str:
    """sha256 of the file with the slot at `start` replaced by the placeholder (no copy of the file)."""
    view = memoryview(model)
    digest = hashlib.sha256(view[:start])
    digest.update(PLACEHOLDER.encode("ascii"))
    digest.update(view[start + SLOT_LENGTH :])
    return digest.hexdigest()


def read_seal(model: bytes, name: str, label: str) -> tuple[Seal, int] | None:
    """(the parsed seal, its offset), or None for a file sealed the older way (or not at all)."""
    start = slot_offset(model, name, label)
    if start is None:
        return None
    try:
        text = model[start : start + SLOT_LENGTH].decode("ascii")
    except UnicodeDecodeError:
        raise ModelError(f"{label}: malformed integrity seal in the medtk metadata (the file was altered)") from None
    return Seal.parse(text, label), start


def verify(model: bytes, name: str, label: str) -> Seal | None:
    """The model's seal after checking its digest; None when it has none. A mismatch is a `ModelError`."""
    found = read_seal(model, name, label)
    if found is None:
        return None
    sealed, start = found
    if canonical_sha256(model, start) != sealed.sha256:
        raise ModelError(
            f"{label}: the file changed after export (its sha256 differs from the seal embedded at export); "
            f"re-export or restore the original"
        )
    return sealed


def fill(model: bytes, start: int, sealed: Seal) -> bytes:
    """The model with the slot at `start` holding `sealed` (same length: nothing else moves)."""
    text = sealed.text().encode("ascii")
    if len(text) != SLOT_LENGTH:
        raise ValueError(f"seal text of {len(text)} bytes; the slot holds {SLOT_LENGTH}")
    return model[:start] + text + model[start + SLOT_LENGTH :]
