"""Lifecycle actions are events too: expiration and transition, named as AWS names them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProc
from tests.lifecycle.conftest import lifecycle_config

from .receiver import poll


def test_expiration_and_transition_events(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    conf = lifecycle_config(tmp_path / "lc.toml")
    conf.write_text(conf.read_text() + f'[notify.targets.log]\ntype = "file"\npath = "{events}"\n')
    d = DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(conf)]).start()
    try:
        s3 = d.s3()
        s3.create_bucket(Bucket="aging")
        s3.put_bucket_notification_configuration(Bucket="aging", NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": "arn:stowage:sqs::log:file",
             "Events": ["s3:LifecycleExpiration:*", "s3:LifecycleTransition"]}]})
        s3.put_object(Bucket="aging", Key="exp/a", Body=b"short-lived")
        s3.put_object(Bucket="aging", Key="cold/b", Body=os.urandom(512 * 1024))
        s3.put_bucket_lifecycle_configuration(Bucket="aging", LifecycleConfiguration={"Rules": [
            {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "exp/"}, "Expiration": {"Days": 1}},
            {"ID": "cool", "Status": "Enabled", "Filter": {"Prefix": "cold/"},
             "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})

        def records() -> list[dict[str, Any]]:
            lines = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
            return [r for m in lines for r in m.get("Records", [])]

        poll(lambda: len(records()) >= 2, 120)
        got = {r["s3"]["object"]["key"]: r for r in records()}
        assert got["exp/a"]["eventName"] == "LifecycleExpiration:Delete"  # unversioned: removed
        assert got["cold/b"]["eventName"] == "LifecycleTransition"
        assert got["cold/b"]["userIdentity"]["principalId"] == "stowage:lifecycle"
    finally:
        d.stop()
