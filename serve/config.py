"""`ServeConfig`: every option of `medtk serve` with its default and its bound, checked in one place.

The CLI and tests only override fields; `validate()` refuses values outside the bounds with a message
that names the option, so a user cannot make the node hold more threads, memory or disk than stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from medtk.errors import ConfigError
from medtk.runtime import DEFAULT_MAX_PIXELS

_DESTINATION = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>\[[0-9a-fA-F:.]+\]|[^:@\[\]]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Destination:
    """A C-STORE destination (a PACS or viewer) that receives every result."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """`AET@HOST:PORT` (IPv6 hosts in brackets), e.g. `PACS@127.0.0.1:4242`."""
        match = _DESTINATION.match(text.strip())
        if not match:
            raise ConfigError(f"--forward {text!r}: expected AET@HOST:PORT, e.g. PACS@127.0.0.1:4242")
        destination = cls(match["aet"], match["host"].strip("[]"), int(match["port"]))
        check_ae_title(destination.ae_title, "--forward")
        check_port(destination.port, "--forward", allow_zero=False)
        return destination

    @property
    def slug(self) -> str:
        """A folder name for this destination's pending results."""
        return re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.ae_title}@{self.host}_{self.port}")

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class ServeConfig:
    """Options of `medtk serve` (see docs/SERVE.md). Ports may be 0 (pick a free one; tests use this)."""

    model: Path
    host: str = "127.0.0.1"
    http_port: int | None = 8080  # None: no HTTP server
    dicom_port: int | None = 11112  # None: no Storage SCP
    ae_title: str = "MEDTK"
    forward: tuple[Destination, ...] = ()
    spool: Path = Path("medtk-spool")
    token_file: Path | None = None
    rules_file: Path | None = None
    allow_ae: tuple[str, ...] = ()  # calling AE titles allowed to associate; empty = any
    queue_size: int = 16  # images admitted and not yet processed (DICOM and HTTP together)
    workers: int = 2  # images processed side by side, each worker with an interpreter of its own (pool.py)
    threads: int | None = None  # threads per interpreter (None: the usable CPUs divided among the workers)
    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_associations: int = 8
    max_http_connections: int = 64
    tls_cert: Path | None = None
    tls_key: Path | None = None
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    min_free_bytes: int = 256 * 1024 * 1024  # refuse new instances (0xA700) below this much free disk
    sc_max_side: int = 2048  # the CAM Secondary Capture is downscaled to at most this many pixels per side
    # durability (issue 21)
    forward_attempts: int = 3  # 0x0110-like failures of one result, while its destination takes others, before it is set aside
    stall_seconds: float = 120.0  # /healthz answers 503 when work waits and nothing completes for this long
    # network bounds (issue 21)
    max_pdu_bytes: int = 131072  # largest P-DATA-TF PDU a sender may send (advertised at association; dcmtk's ceiling)
    max_dataset_bytes: int = 256 * 1024 * 1024  # largest C-STORE data set, as received and once inflated
    http_header_timeout: float = 10.0  # for a request line and headers, from the connection or the last answer
    http_body_timeout: float = 60.0  # for a whole request body, from the end of its headers
    max_uploads: int = 4  # HTTP bodies being received at once (each up to max_body_bytes, held in memory)
    # trust (issue 22)
    allow_failed_variant: bool = False  # serve a variant whose metadata says compress's quality gate failed it

    def validate(self) -> "ServeConfig":
        if not Path(self.model).is_file():
            raise ConfigError(f"MODEL {str(self.model)!r}: no such file")
        check_ae_title(self.ae_title, "--ae-title")
        for title in self.allow_ae:
            check_ae_title(title, "--allow-ae")
        if self.http_port is not None:
            check_port(self.http_port, "--http-port")
        if self.dicom_port is not None:
            check_port(self.dicom_port, "--dicom-port")
        if self.http_port is None and self.dicom_port is None:
            raise ConfigError("both the HTTP and the DICOM listener are disabled; enable at least one")
        _bounded("--queue-size", self.queue_size, 1, 10_000)
        _bounded("--workers", self.workers, 1, 16)
        if self.threads is not None:
            _bounded("--threads", self.threads, 1, 64)
        _bounded("--max-body-bytes", self.max_body_bytes, 1024, 1024**3)
        _bounded("--max-pixels", self.max_pixels, 1, DEFAULT_MAX_PIXELS)
        _bounded("--max-associations", self.max_associations, 1, 64)
        _bounded("--max-http-connections", self.max_http_connections, 1, 1024)
        _bounded("--sc-max-side", self.sc_max_side, 64, 8192)
        if not 0 < self.retry_initial_seconds <= self.retry_max_seconds <= 3600:
            raise ConfigError(
                f"retry backoff must satisfy 0 < initial ({self.retry_initial_seconds}) <= "
                f"max ({self.retry_max_seconds}) <= 3600 seconds"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together; give both or neither")
        for name, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key), ("--token-file", self.token_file),
                           ("--rules", self.rules_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} {str(path)!r}: no such file")
        if len({d.slug for d in self.forward}) != len(self.forward):
            raise ConfigError("--forward: the same destination is given twice")
        _bounded("--forward-attempts", self.forward_attempts, 1, 100)
        _bounded("--stall-seconds", self.stall_seconds, 1, 86400)
        _bounded("--max-pdu-bytes", self.max_pdu_bytes, 4096, 16 * 1024 * 1024)
        _bounded("--max-dataset-bytes", self.max_dataset_bytes, 1024 * 1024, 4 * 1024**3)
        _seconds("--http-header-timeout", self.http_header_timeout, 300)
        _seconds("--http-body-timeout", self.http_body_timeout, 3600)
        _bounded("--max-uploads", self.max_uploads, 1, 64)
        return self

    def interpreter_threads(self) -> int:
        """Threads per worker's interpreter: --threads, else the usable CPUs shared out (at least 1)."""
        from medtk.runtime import default_threads

        return self.threads if self.threads is not None else max(1, default_threads() // self.workers)

    def token(self) -> str | None:
        """The bearer token from --token-file (first line, stripped); None when no file is given."""
        if self.token_file is None:
            return None
        token = Path(self.token_file).read_text(encoding="utf-8").strip().splitlines()
        if not token or len(token[0].strip()) < 16:
            raise ConfigError(f"--token-file {str(self.token_file)!r}: the token must be at least 16 characters")
        return token[0].strip()


def check_ae_title(title: str, option: str) -> None:
    """AE titles are 1-16 characters of the DICOM default repertoire, no backslash or control characters."""
    if not 1 <= len(title.strip()) <= 16 or "\\" in title or any(ord(c) < 32 or ord(c) > 126 for c in title):
        raise ConfigError(f"{option} {title!r}: an AE title is 1-16 printable ASCII characters without '\\'")


def check_port(port: int, option: str, allow_zero: bool = True) -> None:
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ConfigError(f"{option}: port {port} is outside {0 if allow_zero else 1}..65535")


def _bounded(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{option} {value}: must be between {low} and {high}")


def _seconds(option: str, value: float, high: float) -> None:
    if not 0 < value <= high:  # NaN fails too
        raise ConfigError(f"{option} {value}: must be more than 0 and at most {high} seconds")
