"""`ServeNode`: the model, the spool, the workers, the Storage SCP, the forwarders and the HTTP server.

Start order makes "ready" true: the model loads and is checked (a variant that failed compress's
quality gate is refused unless --allow-failed-variant, and then reported), the spool is opened and what an
earlier run acknowledged but did not process is queued again, workers and forwarders start, then
the listeners open. Stop order is the reverse; queued instances stay in the spool for the next start.
Ready also means able to make progress: `health.py` decides, for /healthz and for new HTTP work.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medtk.errors import ConfigError, ModelError
from medtk.runtime import default_threads
from medtk.serve import logs, standard
from medtk.serve.backoff import Backoff
from medtk.serve.config import ServeConfig
from medtk.serve.forwarder import Forwarder
from medtk.serve.health import Blockers, Health, HealthReport
from medtk.serve.identity import ModelIdentity
from medtk.serve.metrics import NodeMetrics
from medtk.serve.native_threads import single_threaded_libraries
from medtk.serve.outcomes import Outcomes
from medtk.serve.pool import ClassifierPool
from medtk.serve.processor import Processor
from medtk.serve.rules import load_rules
from medtk.serve.scp import OUT_OF_RESOURCES, SUCCESS, StorageSCP
from medtk.serve.spool import Spool, SpoolItem
from medtk.serve.uids import SC_SERIES_NUMBER, SR_SERIES_NUMBER
from medtk.serve.work import QueueFull, WorkQueue
from medtk.serve.writer import ResultWriter

log = logging.getLogger(__name__)

QUIET_LOGGERS = ("pynetdicom", "highdicom", "uvicorn.access")  # chatty at INFO, may echo identifiers


class ServeNode:
    def __init__(self, config: ServeConfig) -> None:
        from medtk import __version__
        from medtk.runtime import Classifier, FailedGateWarning

        self.config = config.validate()
        self.token = config.token()
        self.max_body_bytes = config.max_body_bytes
        self.software_version = f"medtk {__version__}"
        _preload()
        single_threaded_libraries()  # after _preload loaded numpy's and OpenCV's (native_threads.py)
        standard.check()
        rules = load_rules(config.rules_file)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        threads = config.interpreter_threads()
        if config.workers * threads > default_threads():
            log.warning("%d workers x %d interpreter threads is more than the %d usable CPUs: they will compete "
                        "for cores (see docs/SERVE.md, Throughput)", config.workers, threads, default_threads())
        with warnings.catch_warnings():  # `_trusted` says it in one line: refused, or logged and reported
            warnings.simplefilter("ignore", FailedGateWarning)
            self.classifier = Classifier(config.model, num_threads=threads, max_pixels=config.max_pixels)
        self.model_warnings = _trusted(self.classifier, config)
        self.classifiers = ClassifierPool(self.classifier, config.workers)
        self.model = ModelIdentity.of(self.classifier)
        self.metrics = NodeMetrics()
        self.metrics.model_gate_failed.set(float(self.classifier.metadata.failed_gate))
        self.spool = Spool(config.spool, [d.slug for d in config.forward])
        self.queue = WorkQueue(config.queue_size, config.workers)
        self.metrics.track_queue(lambda: self.queue.depth, config.queue_size)
        self.forwarders = [
            Forwarder(d, self.spool, self.metrics, config.ae_title, config.retry_initial_seconds,
                      config.retry_max_seconds, max_attempts=config.forward_attempts)
            for d in config.forward
        ]
        self.blockers = Blockers()
        self.outcomes = Outcomes(self.spool, self.metrics, self.blockers, on_results=self._wake_forwarders)
        self.writer = ResultWriter(self.spool, self.outcomes, self.blockers, self.metrics, retry=self._retry)
        self.health = Health(self.blockers, self.queue, self.spool, self.forwarders, self._threads,
                             stall_seconds=config.stall_seconds, min_free_bytes=config.min_free_bytes,
                             warnings=self.model_warnings)
        self.metrics.track_health(lambda: self.health.check().ready)
        self._stopping = threading.Event()
        self.processor = Processor(
            classifiers=self.classifiers, model=self.model, spool=self.spool, metrics=self.metrics,
            software_version=self.software_version, max_pixels=config.max_pixels, sc_max_side=config.sc_max_side,
            writer=self.writer, outcomes=self.outcomes,
        )
        self.scp = None
        if config.dicom_port is not None:
            self.scp = StorageSCP(
                ae_title=config.ae_title, host=config.host, port=config.dicom_port, rules=rules, admit=self.admit,
                max_pixels=config.max_pixels, count_status=lambda s: self.metrics.c_store.labels(f"0x{s:04X}").inc(),
                allow_ae=config.allow_ae, max_associations=config.max_associations,
                ssl_context=self._ssl_context(), ignore=self._is_own_result, scratch=self.spool.incoming,
                max_pdu_bytes=config.max_pdu_bytes, max_dataset_bytes=config.max_dataset_bytes,
                count_refused=lambda: self.metrics.errors.labels("dicom_connection").inc(),
            )
        self._http = None
        self._http_thread: threading.Thread | None = None
        self.http_port: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "ServeNode":
        logs.install()  # no header value reaches the log through a library (logs.py)
        recovered = self.spool.waiting()
        for item in recovered:
            self.queue.submit_recovered(self._instance_job(item, time.time()))
        if recovered:
            log.info("recovered %d acknowledged instance(s) from the spool", len(recovered))
        self.writer.start()
        self.queue.start()
        for forwarder in self.forwarders:
            forwarder.start()
        if self.scp is not None:
            self.scp.start()
        self.health.running = True  # the one "ready" flag /healthz, /v1/predict and metrics read
        if self.config.http_port is not None:
            self._start_http()
        log.info("medtk serve ready: model %s %s (%s), backend %s%s", self.model.name, self.model.version,
                 self.model.variant, self.classifier.backend,
                 f" ({self.classifier.placement.provider})" if self.classifier.placement.provider else "")
        return self

    def stop(self) -> None:
        self.health.running = False
        self._stopping.set()
        self.writer.give_up_on_failure()  # no worker may wait on a disk that cannot take its results
        if self._http is not None:
            self._http.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(10)
        if self.scp is not None:
            self.scp.stop()
        self.queue.stop()
        self.writer.stop()  # commits what the workers finished
        for forwarder in self.forwarders:
            forwarder.stop()
        log.info("medtk serve stopped")
        logs.remove()

    def __enter__(self) -> "ServeNode":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def ready(self) -> bool:
        """Started, and able to make progress (health.py): new HTTP work is refused with 503 otherwise."""
        return self.health.check().ready

    def check_health(self) -> HealthReport:
        return self.health.check()

    @property
    def dicom_port(self) -> int | None:
        return self.scp.port if self.scp is not None else None

    # -- work ---------------------------------------------------------------------------------------
    def admit(self, sop_instance_uid: str, received: Path) -> int:
        """Reserve a slot, spool durably, queue; the C-STORE status to answer."""
        if self.health.disk_problem() is not None:
            self.metrics.errors.labels("disk_low").inc()
            return OUT_OF_RESOURCES
        try:
            self.queue.reserve()
        except QueueFull:
            self.metrics.errors.labels("queue_full").inc()
            return OUT_OF_RESOURCES
        try:
            item = self.spool.admit(sop_instance_uid, received)
        except OSError as error:
            self.queue.release()
            self.metrics.errors.labels("spool").inc()
            log.error("cannot spool an instance (%s)", error.strerror or type(error).__name__)
            return OUT_OF_RESOURCES
        self.queue.submit(self._instance_job(item, time.time()))
        return SUCCESS

    def _instance_job(self, item: SpoolItem, admitted: float):
        def job() -> None:
            """Process `item`; while the spool's disk holds it (outcomes.py), again after a backoff."""
            self.outcomes.retry_while_held(item, lambda: self.processor.process_instance(item, admitted),
                                           Backoff(*self._retry), self._stopping)

        return job

    @property
    def _retry(self) -> tuple[float, float]:
        """The backoff for everything that waits for a peer to recover: a destination, the spool's disk."""
        return self.config.retry_initial_seconds, self.config.retry_max_seconds

    def _threads(self) -> list[threading.Thread]:
        """Every thread the node needs while it runs (health reports one that is not alive)."""
        return [*self.queue.threads, self.writer.thread, *(f.thread for f in self.forwarders)]

    def reserve(self) -> None:
        self.queue.reserve()

    def submit_predict(self, data: bytes, content_type: str, cam: bool) -> Future:
        """Queue an HTTP prediction whose slot `reserve` took; the future holds the JSON answer."""
        future: Future = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.processor.predict_bytes(data, content_type, cam))
            except BaseException as error:  # delivered to the request, which maps it to a status
                future.set_exception(error)

        self.queue.submit(job)
        return future

    def _wake_forwarders(self) -> None:
        for forwarder in self.forwarders:
            forwarder.notify()

    def _is_own_result(self, dataset: Any) -> bool:
        """This node's SR/SC coming back (a destination that forwards to us) is never processed again."""
        return dataset.get("Manufacturer") == "medtk" and dataset.get("SeriesNumber") in (SR_SERIES_NUMBER,
                                                                                          SC_SERIES_NUMBER)

    # -- descriptions -------------------------------------------------------------------------------
    def model_card(self) -> dict[str, Any]:
        """What an integrator needs to know about the model: no filesystem path (the training data's, in
        the intended use, is "a local data set"). `trained_on` is what results are checked against."""
        import re

        metadata = self.classifier.metadata
        point = metadata.operating_point
        intensity = metadata.intensity
        return {
            "name": self.model.name,
            "model_version": metadata.model_version,
            "variant": metadata.variant,
            "labels": list(metadata.labels),
            "positive_class": self.model.positive_class,
            "operating_point": asdict(point) if point is not None else None,
            "calibration": asdict(metadata.calibration) if metadata.calibration is not None else None,
            "quality_gate": asdict(metadata.quality_gate) if metadata.quality_gate is not None else None,
            "input": asdict(metadata.input),
            "metrics": metadata.metrics,
            "intended_use": re.sub(r"[^\s()]*[/\\][^\s()]*", "a local data set", metadata.intended_use),
            "trained_on": {"modalities": list(intensity.modalities), "bit_depths": list(intensity.bit_depths),
                           "photometric": list(intensity.photometric), "intensity_mapping": intensity.mapping},
            "weights_sha256": self.model.weights_sha256,
            "file_sha256": self.model.file_sha256,
            "versions": {
                "medtk": self.software_version.split()[-1],
                "metadata_schema": metadata.schema_version,
                "backend": {"name": self.classifier.backend.name, "version": self.classifier.backend.version},
            },
            "provider": self.classifier.placement.provider,  # .onnx: the ONNX Runtime execution provider
            "threads": self.classifier.num_threads,  # per interpreter
            "interpreters": self.classifiers.size,
            "notice": "UNVERIFIED AI output - NOT FOR DIAGNOSTIC USE",
        }

    # -- transport ----------------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(str(self.config.tls_cert), str(self.config.tls_key))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"--tls-cert/--tls-key: cannot load ({error})") from None
        return context

    def _start_http(self) -> None:
        import functools
        import socket

        import uvicorn

        from medtk.serve.http import Uploads, create_app
        from medtk.serve.http_protocol import BoundedH11Protocol, IdleConnections
        from medtk.serve.listen import cannot_listen

        tls = {}
        if self.config.tls_cert is not None:
            tls = {"ssl_certfile": str(self.config.tls_cert), "ssl_keyfile": str(self.config.tls_key)}
        host, port = self.config.host, self.config.http_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they
        # are TCP, and with Nagle on every keep-alive response waited ~40 ms for the client's delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            raise cannot_listen(error, host, port, "--http-port") from None
        self.http_port = sock.getsockname()[1]
        # connections are bounded by the protocol (idle ones make room), not by limit_concurrency, which
        # counts half-open connections and then answers 503 to everyone
        protocol = functools.partial(BoundedH11Protocol, header_timeout=self.config.http_header_timeout,
                                     idle=IdleConnections(self.config.max_http_connections))
        config = uvicorn.Config(
            create_app(self, Uploads(self.config.max_uploads, self.config.http_body_timeout)), log_level="warning",
            access_log=False, lifespan="off", http=protocol, timeout_keep_alive=5, **tls,
        )
        self._http = uvicorn.Server(config)
        self._http_thread = threading.Thread(target=self._http.run, kwargs={"sockets": [sock]},
                                             name="medtk-serve-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + 10
        while not self._http.started and self._http_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._http.started:
            raise ConfigError(f"HTTP server did not start on {self.config.host}:{self.http_port}")
        log.info("HTTP listening on %s://%s:%d", "https" if tls else "http", self.config.host, self.http_port)


def _trusted(classifier: Any, config: ServeConfig) -> tuple[str, ...]:
    """Refuse a variant whose sealed metadata says compress's quality gate failed it, unless the operator
    allowed it (--allow-failed-variant); then a warning, logged now and reported by /healthz."""
    metadata = classifier.metadata
    if not metadata.failed_gate:
        return ()
    gates = "; ".join(failure.describe() for failure in metadata.quality_gate.failures) or "no gate named"
    what = f"variant {metadata.variant} failed compress's quality gate ({gates})"
    if not config.allow_failed_variant:
        raise ModelError(f"{config.model}: {what}; refusing to serve it: deploy the variant compress recommends, or "
                         "pass --allow-failed-variant to serve this one anyway")
    message = f"the model's {what}; served anyway (--allow-failed-variant)"  # no file path: /healthz shows it
    log.warning("%s", message)
    return (message,)


def _preload() -> None:
    """Import the DICOM stack before any thread starts: a first import racing in several threads
    (workers, forwarders, the SCP) can see partially initialised pydicom modules."""
    import highdicom  # noqa: F401
    import pydicom
    import pydicom.pixels  # noqa: F401
    import pydicom.sr.codedict  # noqa: F401
    import pynetdicom  # noqa: F401
    import pynetdicom.status  # noqa: F401
    from pydicom.uid import ExplicitVRLittleEndian  # noqa: F401

    from medtk.runtime import overlay  # noqa: F401
