"""`medtk serve`: run the scanner-side AI node (DICOM Storage SCP + HTTP API) on one model.

A thin shell over `medtk.serve`: options become a `ServeConfig`, the node runs until
SIGINT/SIGTERM, and a missing `serve` extra is one line saying what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

SERVE_MODULES = ("pynetdicom", "highdicom", "fastapi", "uvicorn", "prometheus_client")


def serve(
    model: Annotated[Path, typer.Argument(help="A medtk .tflite model, or .onnx with medtk[onnx] installed.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (HTTP and DICOM).")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option("--http-port", min=0, max=65535, help="HTTP port (0: any free).")] = 8080,
    dicom_port: Annotated[int, typer.Option("--dicom-port", min=0, max=65535, help="DICOM port (0: any free).")] = 11112,
    no_http: Annotated[bool, typer.Option("--no-http", help="Run the DICOM side only.")] = False,
    no_dicom: Annotated[bool, typer.Option("--no-dicom", help="Run the HTTP side only.")] = False,
    ae_title: Annotated[str, typer.Option("--ae-title", help="This node's AE title.")] = "MEDTK",
    forward: Annotated[
        Optional[list[str]], typer.Option("--forward", help="Send results to AET@HOST:PORT (repeatable).")
    ] = None,
    spool: Annotated[Path, typer.Option("--spool", help="Folder for received instances and results.")] = Path(
        "medtk-spool"
    ),
    token_file: Annotated[
        Optional[Path], typer.Option("--token-file", help="Require 'Authorization: Bearer <first line>' on HTTP.")
    ] = None,
    rules: Annotated[Optional[Path], typer.Option("--rules", help="Selection rules (TOML); default: all.")] = None,
    allow_ae: Annotated[
        Optional[list[str]], typer.Option("--allow-ae", help="Calling AE title allowed to send (repeatable).")
    ] = None,
    queue_size: Annotated[int, typer.Option("--queue-size", help="Images admitted and not yet processed.")] = 16,
    workers: Annotated[int, typer.Option("--workers", help="Images processed at once, each on its own interpreter.")] = 2,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Threads per interpreter [default: CPUs / workers].")] = None,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest HTTP body.")] = 64 * 1024 * 1024,
    max_pixels: Annotated[Optional[int], typer.Option("--max-pixels", help="Largest image (pixels).")] = None,
    max_associations: Annotated[int, typer.Option("--max-associations", help="Concurrent DICOM associations.")] = 8,
    tls_cert: Annotated[Optional[Path], typer.Option("--tls-cert", help="PEM certificate: TLS on HTTP and DICOM.")] = None,
    tls_key: Annotated[Optional[Path], typer.Option("--tls-key", help="PEM private key for --tls-cert.")] = None,
    retry_max: Annotated[float, typer.Option("--retry-max", help="Longest wait between resends (s).")] = 60.0,
    forward_attempts: Annotated[int, typer.Option(
        "--forward-attempts", help="Processing failures (0x0110) of one result, while its destination takes "
        "others, before it is set aside.")] = 3,
    stall_seconds: Annotated[float, typer.Option(
        "--stall-seconds", help="/healthz answers 503 when work waits and nothing completes for this long.")] = 120.0,
    max_pdu_bytes: Annotated[
        int, typer.Option("--max-pdu-bytes", help="Largest DICOM PDU a sender may send (advertised).")
    ] = 131072,
    max_dataset_bytes: Annotated[
        int, typer.Option("--max-dataset-bytes", help="Largest C-STORE data set, as sent and once inflated.")
    ] = 256 * 1024 * 1024,
    http_header_timeout: Annotated[
        float, typer.Option("--http-header-timeout", help="Seconds for a request line and headers.")
    ] = 10.0,
    http_body_timeout: Annotated[
        float, typer.Option("--http-body-timeout", help="Seconds for a whole request body.")
    ] = 60.0,
    max_uploads: Annotated[int, typer.Option("--max-uploads", help="HTTP bodies received at once.")] = 4,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    allow_failed_variant: Annotated[bool, typer.Option(
        "--allow-failed-variant", help="Serve a variant that failed compress's quality gate (refused otherwise); "
        "/healthz and /metrics then say so.")] = False,
) -> None:
    """Run the AI node: DICOM in (Storage SCP), SR + CAM Secondary Capture out, and an HTTP API."""
    import importlib.util
    import logging
    import signal
    import threading

    from medtk.errors import ConfigError, MissingExtraError

    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(f"medtk serve needs {', '.join(missing)}: pip install \"medtk[serve]\"")
    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"--log-level {log_level!r}: expected DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from medtk.runtime import DEFAULT_MAX_PIXELS
    from medtk.serve.config import Destination, ServeConfig
    from medtk.serve.node import ServeNode

    config = ServeConfig(
        model=model, host=host, http_port=None if no_http else http_port, dicom_port=None if no_dicom else dicom_port,
        ae_title=ae_title, forward=tuple(Destination.parse(text) for text in forward or ()), spool=spool,
        token_file=token_file, rules_file=rules, allow_ae=tuple(allow_ae or ()), queue_size=queue_size,
        workers=workers, threads=threads, max_body_bytes=max_body_bytes, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
        max_associations=max_associations, tls_cert=tls_cert, tls_key=tls_key,
        retry_max_seconds=retry_max, retry_initial_seconds=min(1.0, retry_max),
        forward_attempts=forward_attempts, stall_seconds=stall_seconds, max_pdu_bytes=max_pdu_bytes,
        max_dataset_bytes=max_dataset_bytes, http_header_timeout=http_header_timeout,
        http_body_timeout=http_body_timeout, max_uploads=max_uploads, allow_failed_variant=allow_failed_variant,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = ServeNode(config)
    try:
        node.start()  # a listener that cannot open raises ConfigError; the finally stops what started
        ports = f"HTTP {config.host}:{node.http_port}" if node.http_port is not None else "no HTTP"
        if node.dicom_port is not None:
            ports += f", DICOM {config.ae_title}@{config.host}:{node.dicom_port}"
        typer.echo(f"medtk serve: {ports}; spool {config.spool}", err=True)
        stop.wait()
    finally:
        node.stop()
