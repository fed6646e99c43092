"""Notification and replication state survives `stowage recover-metadata`: targets (their secret still wrapped),
bucket configurations and undelivered events are journaled MetaDB commits like any other."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import DaemonProc

from .receiver import Receiver
from .test_notifications import add_webhook, config
from .test_replication import add_target, rule, status_of, wait_status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(auth="Bearer sekrit-token")
    yield r
    r.close()


def test_targets_configs_and_queue_survive_recover_metadata(daemon: DaemonProc, receiver: Receiver) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="keep")
    arn = add_webhook(daemon, "hook", receiver.url, "--auth-header", "Bearer sekrit-token")
    s3.put_bucket_notification_configuration(Bucket="keep", NotificationConfiguration=config(
        arn, ["s3:ObjectCreated:*"], prefix="p/"))
    receiver.wait_for(lambda: len(receiver.tests()) == 1)  # the auth header was sent
    receiver.refusing = True
    for i in range(5):
        s3.put_object(Bucket="keep", Key=f"p/{i}", Body=b"x")
    daemon.stop()
    assert b"sekrit-token" not in b"".join(p.read_bytes() for p in (daemon.data_dir / "meta").rglob("*")
                                           if p.is_file())
    shutil.rmtree(daemon.data_dir / "meta")
    daemon.cli("recover-metadata", "--json")
    receiver.refusing = False
    daemon.start()
    receiver.wait_for(lambda: len(receiver.records()) >= 5)
    assert sorted({r["s3"]["object"]["key"] for r in receiver.records()}) == [f"p/{i}" for i in range(5)]
    s3 = daemon.s3()
    assert s3.get_bucket_notification_configuration(Bucket="keep")["QueueConfigurations"][0]["QueueArn"] == arn
    listed = json.loads(daemon.cli("notify", "target", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["hook"] and listed[0]["auth_header"] is True


def test_replication_targets_rules_queue_and_states_survive_recover_metadata(daemon_factory: Any) -> None:
    a, b = daemon_factory(["--no-mount"], name="a"), daemon_factory(["--no-mount"], name="b")
    sa, sb = a.s3(), b.s3()
    for s3, bucket in ((sa, "src"), (sb, "dst")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    add_target(a, "boxb", b)
    sa.put_bucket_replication(Bucket="src", ReplicationConfiguration={"Role": "", "Rules": [rule("boxb", "dst")]})
    done = sa.put_object(Bucket="src", Key="done", Body=b"1")["VersionId"]
    wait_status(sa, "src", "done", done, "COMPLETED")
    b.kill()
    pending = sa.put_object(Bucket="src", Key="pending", Body=b"2")["VersionId"]
    a.stop()
    assert b.secret_key.encode() not in b"".join(p.read_bytes() for p in (a.data_dir / "meta").rglob("*")
                                                 if p.is_file())
    shutil.rmtree(a.data_dir / "meta")
    a.cli("recover-metadata", "--json")
    b.extra_args += ["--listen", b.endpoint.removeprefix("http://")]
    b.start()
    a.start()
    sa = a.s3()
    assert status_of(sa, "src", "done", done) == "COMPLETED"
    wait_status(sa, "src", "pending", pending, "COMPLETED")
    assert sa.get_bucket_replication(Bucket="src")["ReplicationConfiguration"]["Rules"][0]["ID"] == "all"
    assert [t["name"] for t in json.loads(a.cli("replication", "target", "list", "--json").stdout)] == ["boxb"]
