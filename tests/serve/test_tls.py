"""`--tls-cert/--tls-key` end to end: HTTPS and DICOM over TLS on a real node with a real certificate.

A self-signed certificate for 127.0.0.1/localhost is made at test time; clients that trust it get
answers, clients that speak plain TCP or do not trust it get nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import time
from pathlib import Path

import cv2
import httpx
import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from tests.serve.serve_helpers import LOOPBACK, wait_outbox

from medtk.runtime import Classifier
from medtk.serve.tcp import QuickAckSSLSocket

TIMEOUT = 10.0  # seconds, for every connection, handshake, request and DIMSE exchange


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate (EC P-256) for 127.0.0.1 and localhost, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "server.pem", folder / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    return cert, private


@pytest.fixture
def tls_node(start_node, tmp_path):
    """A node with HTTP and DICOM both under TLS; (node, certificate file)."""
    cert, key = _certificate(tmp_path)
    return start_node(tls_cert=cert, tls_key=key), cert


def _client_context(cert: Path) -> ssl.SSLContext:
    """What a client configured to trust this node's certificate uses (hostname checked); httpx's
    `verify=` takes it too (a bare path there is deprecated)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))


def _ae(*contexts) -> AE:
    ae = AE(ae_title="TLSSCU")
    for context in contexts:
        ae.add_requested_context(*context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = TIMEOUT
    return ae


def _png(image) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def test_https_answers_with_the_certificate_and_refuses_plain_http(tls_node, serve_models, chest_images, tmp_path):
    node, cert = tls_node
    base = f"https://{LOOPBACK}:{node.http_port}"
    with httpx.Client(verify=_client_context(cert), timeout=TIMEOUT) as client:
        assert client.get(f"{base}/healthz").status_code == 200
        body = _png(chest_images[7])
        response = client.post(f"{base}/v1/predict", content=body, headers={"Content-Type": "image/png"})
        assert response.status_code == 200, response.text
    answer = response.json()
    (tmp_path / "x.png").write_bytes(body)
    expected = Classifier(serve_models["op"], num_threads=1).predict(tmp_path / "x.png")
    assert answer["label"] == expected.label and answer["positive"] == expected.positive
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)

    # Plain HTTP on the TLS port: the server cannot read it as a TLS ClientHello and drops it.
    try:
        plain = httpx.get(f"http://{LOOPBACK}:{node.http_port}/healthz", timeout=TIMEOUT)
    except httpx.TransportError:
        pass
    else:
        assert plain.status_code != 200
    # A client that trusts only the system roots refuses the self-signed certificate.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/healthz", timeout=TIMEOUT)
    # The node still answers after the refused connections.
    assert httpx.get(f"{base}/healthz", verify=_client_context(cert), timeout=TIMEOUT).status_code == 200


def test_dicom_echo_and_store_over_tls(tls_node, dicom_files):
    node, cert = tls_node
    source = pydicom.dcmread(dicom_files["cr"])
    ae = _ae((Verification,), (source.SOPClassUID, [source.file_meta.TransferSyntaxUID]))
    association = ae.associate(LOOPBACK, node.dicom_port, ae_title="MEDTK",
                               tls_args=(_client_context(cert), "localhost"))
    assert association.is_established
    try:
        assert isinstance(association.dul.socket.socket, ssl.SSLSocket)  # the bytes went over TLS
        assert association.dul.socket.socket.version() in ("TLSv1.2", "TLSv1.3")
        assert int(association.send_c_echo().Status) == 0x0000
        assert int(association.send_c_store(source).Status) == 0x0000
        (accepted,) = node.scp._server.active_associations
        assert isinstance(accepted.dul.socket.socket, QuickAckSSLSocket)  # tcp.py: ACKs at once over TLS too
        assert accepted.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        association.release()
    results = wait_outbox(node, 2)
    sr = [ds for ds in results if ds.Modality == "SR"]
    assert len(sr) == 1 and sr[0].StudyInstanceUID == source.StudyInstanceUID
    assert (sr[0].CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
            .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID)


def test_dicom_refuses_plain_and_untrusting_associations(tls_node):
    node, cert = tls_node
    plain = _ae((Verification,)).associate(LOOPBACK, node.dicom_port, ae_title="MEDTK")
    assert not plain.is_established
    # A modality that does not trust the certificate stops at the handshake.
    untrusting = _ae((Verification,)).associate(LOOPBACK, node.dicom_port, ae_title="MEDTK",
                                                tls_args=(ssl.create_default_context(), "localhost"))
    assert not untrusting.is_established
    # A certificate for another name is refused by the hostname check.
    wrong_name = _ae((Verification,)).associate(LOOPBACK, node.dicom_port, ae_title="MEDTK",
                                                tls_args=(_client_context(cert), "pacs.example.org"))
    assert not wrong_name.is_established
    association = _ae((Verification,)).associate(LOOPBACK, node.dicom_port, ae_title="MEDTK",
                                                 tls_args=(_client_context(cert), "localhost"))
    assert association.is_established
    try:
        assert int(association.send_c_echo().Status) == 0x0000
    finally:
        association.release()


def test_an_idle_connection_does_not_block_the_dicom_listener(tls_node):
    """A TCP connection that never starts its handshake (a port scan, a stuck client) must not hold
    up other modalities: the handshake belongs to the association's thread, not to the accept loop."""
    node, cert = tls_node
    with socket.create_connection((LOOPBACK, node.dicom_port), timeout=TIMEOUT):
        time.sleep(0.2)  # the listener has accepted it
        started = time.monotonic()
        association = _ae((Verification,)).associate(LOOPBACK, node.dicom_port, ae_title="MEDTK",
                                                     tls_args=(_client_context(cert), "localhost"))
        try:
            assert association.is_established
            assert int(association.send_c_echo().Status) == 0x0000
        finally:
            if association.is_established:
                association.release()
        assert time.monotonic() - started < TIMEOUT
