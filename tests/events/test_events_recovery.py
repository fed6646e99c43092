"""Notification state survives `stowage recover-metadata`: targets (their secret still wrapped),
bucket configurations and undelivered events are journaled MetaDB commits like any other."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import DaemonProc

from .receiver import Receiver
from .test_notifications import add_webhook, config


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
