"""Control ops of the operator's side (registered by the daemon):

    metrics.token {}                       a new bearer token for /_stowage/v1/metrics -> {"token"}
                                           (only its SHA-256 is stored; the old one stops working)
    access-log.set {"bucket", "enabled"}   the structured access log for one bucket -> its settings
    access-log.list {}                     the buckets with logging settings
    alerts.list {}                         the alerts firing (or resolved, not yet announced)
    alerts.check {}                        evaluate the alert conditions now -> alerts.list
    alerts.smtp-password {"password"}      store the SMTP password wrapped by the master key
"""

from __future__ import annotations

import secrets
from typing import Any

from appliance.alerts import Alerter
from appliance.control import ControlServer, Emit
from appliance.engine.errors import StowageError
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import BucketLoggingRecord
from appliance.opstate import METRICS_TOKEN, OperatorState
from s3gw.metrics import token_digest


class BadArgument(StowageError):
    code = "InvalidArgument"


def new_metrics_token() -> tuple[str, dict[str, Any]]:
    """A token and what is stored of it."""
    token = secrets.token_urlsafe(32)
    return token, {"sha256": token_digest(token)}


def register(control: ControlServer, state: OperatorState, store: ObjectStore, alerter: Alerter) -> None:
    async def metrics_token(args: dict[str, Any], emit: Emit) -> Any:
        token, stored = new_metrics_token()
        await state.put(METRICS_TOKEN, stored)
        return {"token": token}

    async def access_log_set(args: dict[str, Any], emit: Emit) -> Any:
        bucket, enabled = args.get("bucket"), args.get("enabled")
        if not isinstance(bucket, str) or not isinstance(enabled, bool):
            raise BadArgument("access-log.set needs a bucket name and enabled: true or false")
        old = store.bucket_logging(bucket)
        rec = BucketLoggingRecord(bucket, enabled, old.target_bucket if old else "", old.target_prefix if old else "")
        await store.set_bucket_logging(rec)
        return {"bucket": bucket, "access_log": enabled, "target_bucket": rec.target_bucket}

    async def access_log_list(args: dict[str, Any], emit: Emit) -> Any:
        return [{"bucket": r.bucket, "access_log": r.access_log, "target_bucket": r.target_bucket,
                 "target_prefix": r.target_prefix} for r in store.all_bucket_logging()]

    async def alerts_list(args: dict[str, Any], emit: Emit) -> Any:
        return alerter.to_json()

    async def alerts_check(args: dict[str, Any], emit: Emit) -> Any:
        await alerter.evaluate()
        return alerter.to_json()

    async def smtp_password(args: dict[str, Any], emit: Emit) -> Any:
        password = args.get("password")
        if not isinstance(password, str):
            raise BadArgument("alerts.smtp-password needs a password (\"\" removes it)")
        await alerter.set_password(password)
        return {"set": bool(password)}

    control.register("alerts.list", alerts_list)
    control.register("alerts.check", alerts_check)
    control.register("alerts.smtp-password", smtp_password)
    control.register("metrics.token", metrics_token)
    control.register("access-log.set", access_log_set)
    control.register("access-log.list", access_log_list)
