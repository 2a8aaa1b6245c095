"""What a destination's answers do to the results owed to it, against a real pynetdicom SCP that answers as
each test says: temporary refusals are waited out, objects it can never take are set aside with the reason,
and the rest flows (issue 21, findings 2 and 3)."""

from __future__ import annotations

import pytest
from tests.serve.serve_helpers import RecordingSCP, first_answers, healthz, radiograph, send_datasets, wait_until

from medtk.errors import ConfigError
from medtk.serve.config import ServeConfig
from medtk.serve.faults import Verdict, store_verdict

@pytest.fixture
def destination():
    scps = []

    def start(**options) -> RecordingSCP:
        scps.append(RecordingSCP(**options).start())
        return scps[-1]

    yield start
    for scp in scps:
        scp.stop()


def _images(chest_images, count: int, first: int = 0) -> list:
    return [radiograph(image, number=first + i + 1) for i, image in enumerate(chest_images[first:first + count])]


def _set_aside(node) -> dict[str, str]:
    """rejected/<destination>/: result UID -> the reason beside it."""
    folder = node.spool.rejected_dir(node.config.forward[0].slug)
    return {path.stem: path.with_suffix(".txt").read_text() for path in folder.glob("*.dcm")}


def _drained(node) -> bool:
    return node.spool.pending_count(node.config.forward[0].slug) == 0


@pytest.mark.slow
def test_out_of_resources_is_waited_out_and_every_result_arrives_once(start_node, destination, chest_images):
    scp = destination(answer=first_answers(4, 0xA700))
    node = start_node(forward=(scp.destination,))
    assert send_datasets(node.dicom_port, _images(chest_images, 3)) == [0] * 3
    wait_until(lambda: len(scp.stored()) == 6 and _drained(node), "all six results arrive after the refusals")
    assert sorted(scp.stored()) == sorted(set(scp.stored()))  # exactly once each
    assert {uid for uid, status in scp.attempts if status == 0xA700} <= set(scp.stored())
    assert _set_aside(node) == {}


@pytest.mark.slow
def test_a_destination_without_sr_gets_every_capture_and_the_reports_are_set_aside(start_node, destination,
                                                                                   chest_images):
    scp = destination(sop_classes=("SecondaryCaptureImageStorage",))
    node = start_node(forward=(scp.destination,))
    assert send_datasets(node.dicom_port, _images(chest_images, 3)) == [0] * 3
    wait_until(lambda: len(scp.stored()) == 3 and len(_set_aside(node)) == 3 and _drained(node),
               "three captures delivered, three reports set aside")
    assert set(_set_aside(node).values()) == {"destination does not accept Comprehensive 3D SR Storage\n"}
    assert {path.stem for path in node.spool.outbox.glob("*.dcm")} == set(scp.stored()) | set(_set_aside(node))
    code, body = healthz(node.http_port)
    assert code == 200  # the node still takes and keeps work
    assert body["destinations"][str(scp.destination)] == {"pending": 0, "set_aside": 3, "state": "idle"}
    metrics = node.metrics.render().decode()
    assert (f'medtk_serve_set_aside_total{{destination="{scp.destination}",reason="not_accepted"}} 3.0'
            in metrics)


@pytest.mark.slow
def test_a_destination_that_accepts_none_of_the_results_has_them_all_set_aside(start_node, destination,
                                                                               chest_images):
    scp = destination(sop_classes=("CTImageStorage",))  # the association itself is refused: no context
    node = start_node(forward=(scp.destination,))
    assert send_datasets(node.dicom_port, _images(chest_images, 1)) == [0]
    wait_until(lambda: len(_set_aside(node)) == 2, "the report and the capture are set aside")
    assert sorted(_set_aside(node).values()) == ["destination does not accept Comprehensive 3D SR Storage\n",
                                                 "destination does not accept Secondary Capture Image Storage\n"]
    assert scp.attempts == []


@pytest.mark.slow
def test_a_permanent_status_sets_the_object_aside_at_once(start_node, destination, chest_images):
    scp = destination(answer=lambda ds: 0xC000 if ds.Modality == "SR" else 0x0000)
    node = start_node(forward=(scp.destination,))
    assert send_datasets(node.dicom_port, _images(chest_images, 2)) == [0, 0]
    wait_until(lambda: len(scp.stored()) == 2 and len(_set_aside(node)) == 2 and _drained(node),
               "captures delivered, reports set aside")
    assert set(_set_aside(node).values()) == {"0xC000 Cannot Understand\n"}
    assert all(scp.tries(uid) == 1 for uid in _set_aside(node))  # one attempt each


@pytest.mark.slow
def test_processing_failures_of_a_sick_destination_set_nothing_aside(start_node, destination, chest_images):
    scp = destination(answer=first_answers(5, 0x0110))
    node = start_node(forward=(scp.destination,), forward_attempts=1)
    assert send_datasets(node.dicom_port, _images(chest_images, 2)) == [0, 0]
    wait_until(lambda: len(scp.stored()) == 4 and _drained(node), "every result arrives once it recovers")
    assert _set_aside(node) == {} and sorted(scp.stored()) == sorted(set(scp.stored()))


@pytest.mark.slow
def test_an_object_that_keeps_failing_while_others_arrive_is_set_aside_after_its_attempts(start_node, destination,
                                                                                         chest_images):
    from medtk.serve.uids import result_uid

    first, second = _images(chest_images, 1), _images(chest_images, 1, first=1)
    bad = ""  # the first image's report, known once the node (its model) is up
    scp = destination(answer=lambda ds: 0x0110 if ds.SOPInstanceUID == bad else 0x0000)
    node = start_node(forward=(scp.destination,), forward_attempts=2)
    bad = result_uid(first[0].SOPInstanceUID, node.model.file_sha256, "sr")
    assert send_datasets(node.dicom_port, first) == [0]
    # once it failed twice, one of those failures came after its capture was accepted: one counted
    wait_until(lambda: scp.tries(bad) >= 2 and len(scp.stored()) == 1, "the report failed after its capture")
    assert _set_aside(node) == {}
    assert send_datasets(node.dicom_port, second) == [0]
    wait_until(lambda: bad in _set_aside(node) and len(scp.stored()) == 3 and _drained(node),
               "the report is set aside once the destination took others again")
    assert _set_aside(node)[bad] == "0x0110 Processing Failure, 2 times while the destination accepted other objects\n"


@pytest.mark.parametrize(("status", "verdict"), [
    (0x0000, Verdict.DELIVERED), (0xB000, Verdict.DELIVERED), (0x0001, Verdict.DELIVERED),
    (0xA700, Verdict.TEMPORARY), (0xA7FE, Verdict.TEMPORARY), (0x0213, Verdict.TEMPORARY),
    (0xA900, Verdict.PERMANENT), (0xC123, Verdict.PERMANENT), (0x0122, Verdict.PERMANENT), (0x0124, Verdict.PERMANENT),
    (0x0110, Verdict.UNCERTAIN), (0x1234, Verdict.UNCERTAIN),
])
def test_statuses_are_classified_in_one_place(status, verdict):
    assert store_verdict(status) is verdict


@pytest.mark.parametrize("attempts", [0, 101])
def test_forward_attempts_is_bounded(tmp_path, attempts):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(ConfigError, match=f"--forward-attempts {attempts}"):
        ServeConfig(model=model, forward_attempts=attempts).validate()
