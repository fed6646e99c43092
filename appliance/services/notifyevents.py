"""The event messages, in AWS's format: a `Records` list of event records (event structure
version 2.1), and the `s3:TestEvent` sent when a configuration is saved.

A record is built when the change commits (what it says is what the commit did) and stored in
the delivery queue as is; delivery only sends it.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from appliance.engine import events
from appliance.engine.events import Cause, Change
from appliance.engine.records import ObjectVersion


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{(ns // 1_000_000) % 1000:03d}Z"


def event_name(change: Change, cause: Cause | None) -> str | None:
    """The S3 event name of a change (with its "s3:" prefix); None: no event (an in-place change
    nobody named, such as an ACL set by a caller that did not say)."""
    v = change.version
    if cause is not None and cause.event:
        return "s3:" + cause.event
    if change.kind == events.PUT:
        if v.delete_marker:
            return "s3:ObjectRemoved:DeleteMarkerCreated"
        return "s3:ObjectCreated:" + (cause.created if cause is not None else "Put")
    if change.kind == events.REMOVE:
        return "s3:ObjectRemoved:Delete"
    return None


def record(name: str, v: ObjectVersion, cause: Cause | None, config_id: str, region: str,
           bucket_owner: str) -> dict[str, Any]:
    """One event record (AWS's structure: the key URL-encoded as in a form, size and ETag only for
    events that create or change an object, the sequencer ordering events of one key)."""
    obj: dict[str, Any] = {"key": quote_plus(v.key, safe="/"), "sequencer": f"{v.seq:016X}"}
    if not name.startswith(("s3:ObjectRemoved:", "s3:LifecycleExpiration:")):
        obj["size"] = v.size
        obj["eTag"] = v.etag
    if v.version_id != "null":
        obj["versionId"] = v.version_id
    principal = (cause.principal if cause is not None else "") or "stowage:mount"
    request_id = (cause.request_id if cause is not None else "") or secrets.token_hex(8).upper()
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso(time.time_ns()),
        "eventName": name.removeprefix("s3:"),
        "userIdentity": {"principalId": principal},
        "requestParameters": {"sourceIPAddress": (cause.source_ip if cause is not None else "") or "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": secrets.token_hex(16)},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": config_id,
            "bucket": {"name": v.bucket, "ownerIdentity": {"principalId": bucket_owner},
                       "arn": f"arn:aws:s3:::{v.bucket}"},
            "object": obj,
        },
    }


def test_event(bucket: str, request_id: str) -> dict[str, Any]:
    return {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": _iso(time.time_ns()), "Bucket": bucket,
            "RequestId": request_id, "HostId": secrets.token_hex(16)}


def message(payload: dict[str, Any]) -> dict[str, Any]:
    """What is sent for a queued payload: a test event as is, an event record in a Records list."""
    return payload if payload.get("Event") == "s3:TestEvent" else {"Records": [payload]}
