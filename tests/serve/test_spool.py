"""The spool's layout and its crash rules; result UIDs derive from source and model."""

from __future__ import annotations

import os

from tests.serve.serve_helpers import received

from medtk.serve.spool import Spool
from medtk.serve.uids import result_uid, series_uid, uid_tag


def test_admit_commit_and_pending_links(tmp_path):
    spool = Spool(tmp_path, ["PACS@h_1", "VIEW@h_2"])
    item = spool.admit("1.2.3.4", received(tmp_path, b"instance"))
    assert item.path.read_bytes() == b"instance" and item.path.parent == spool.queue
    assert [i.key for i in spool.waiting()] == [item.key]
    written = spool.commit(item, {"2.25.1": b"sr", "2.25.2": b"sc"})
    assert not item.path.exists() and spool.waiting() == []
    assert sorted(p.name for p in written) == ["2.25.1.dcm", "2.25.2.dcm"]
    for slug in ("PACS@h_1", "VIEW@h_2"):
        pending = spool.to_send(slug)
        assert sorted(p.name for p in pending) == ["2.25.1.dcm", "2.25.2.dcm"]
        assert all(os.path.samefile(p, spool.outbox / p.name) for p in pending)  # links, not copies
    spool.sent(spool.to_send("PACS@h_1")[0])
    assert spool.pending_count("PACS@h_1") == 1 and spool.pending_count("VIEW@h_2") == 2
    assert len(list(spool.outbox.glob("*.dcm"))) == 2  # the outbox keeps every result


def test_admission_links_a_received_file_and_moves_an_inflated_one(tmp_path):
    """Same file system: the queued instance is the received file's data, not a copy of it (the copy is
    tests/serve/test_disk_full.py's, across disks); one inflated into incoming/ is moved."""
    spool = Spool(tmp_path / "spool")
    source = received(tmp_path, b"instance")
    item = spool.admit("1.2.3", source)
    assert os.path.samefile(source, item.path) and item.path.parent == spool.queue
    source.unlink()  # pynetdicom removes its file once the handler returns
    assert item.path.read_bytes() == b"instance" and list(spool.incoming.iterdir()) == []
    inflated = spool.incoming / ".inflated-1.dcm"
    inflated.write_bytes(b"inflated")
    moved = spool.admit("1.2.4", inflated)
    assert not inflated.exists() and moved.path.read_bytes() == b"inflated"


def test_recommit_replaces_rather_than_adds(tmp_path):
    """A crash between commit and unlink means the instance is processed again: same names, no extras."""
    spool = Spool(tmp_path, ["PACS@h_1"])
    first = spool.admit("1.2.3", received(tmp_path, b"a"))
    spool.commit(first, {"2.25.9": b"v1"})
    again = spool.admit("1.2.3", received(tmp_path, b"a"))
    spool.commit(again, {"2.25.9": b"v2"})
    assert [p.read_bytes() for p in spool.outbox.glob("*.dcm")] == [b"v2"]
    assert [p.read_bytes() for p in spool.to_send("PACS@h_1")] == [b"v2"]


def test_resend_of_the_same_instance_replaces_the_queued_one(tmp_path):
    spool = Spool(tmp_path)
    spool.admit("1.2.3", received(tmp_path, b"first"))
    spool.admit("1.2.3", received(tmp_path, b"second"))
    assert [i.path.read_bytes() for i in spool.waiting()] == [b"second"]


def test_partial_writes_are_dropped_at_start(tmp_path):
    spool = Spool(tmp_path)
    (spool.incoming / ".x.dcm.1.2.tmp").write_bytes(b"half")
    (spool.queue / ".y.dcm.1.2.tmp").write_bytes(b"half")
    spool.admit("1.2.3", received(tmp_path, b"whole"))
    Spool(tmp_path)
    assert list(spool.incoming.iterdir()) == []
    assert [p.name for p in spool.queue.iterdir()] == [f"{Spool.key('1.2.3')}.dcm"]


def test_fail_keeps_instance_and_reason(tmp_path):
    spool = Spool(tmp_path)
    item = spool.admit("1.2.3", received(tmp_path, b"bad"))
    spool.fail(item, "ValueError: broken")
    assert spool.waiting() == []
    assert (spool.failed / f"{item.key}.dcm").read_bytes() == b"bad"
    assert "broken" in (spool.failed / f"{item.key}.txt").read_text()


def test_reject_moves_out_of_pending(tmp_path):
    spool = Spool(tmp_path, ["P@h_1"])
    spool.commit(spool.admit("1.2", received(tmp_path, b"x")), {"2.25.5": b"r"})
    spool.reject("P@h_1", spool.to_send("P@h_1")[0], "status 0xA900")
    assert spool.pending_count("P@h_1") == 0
    assert (tmp_path / "rejected" / "P@h_1" / "2.25.5.dcm").exists()


def test_uids_are_deterministic_and_distinct():
    a = result_uid("1.2.3", "sha-a", "sr")
    assert a == result_uid("1.2.3", "sha-a", "sr") and a.startswith("2.25.") and len(a) <= 64
    assert len({a, result_uid("1.2.3", "sha-a", "sc"), result_uid("1.2.4", "sha-a", "sr"),
                result_uid("1.2.3", "sha-b", "sr")}) == 4
    assert series_uid("9.8", "sha-a", "sr") != series_uid("9.8", "sha-a", "sc")
    assert uid_tag("1.2.3") == uid_tag("1.2.3") and "1.2.3" not in uid_tag("1.2.3")
