"""The operator's config sections ([admin], [access_log], [alerts], [durability]): defaults,
and one clear error for each kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..configtext import load_text, refused


def test_defaults(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "")
    assert cfg.admin.listen == "" and not cfg.admin.metrics_public
    assert not cfg.access_log.enabled and cfg.access_log.target == "file"
    assert cfg.alerts.pool_full_percent == 85.0 and cfg.alerts.smtp_to == []
    assert cfg.durability.afr_percent == 1.5


@pytest.mark.parametrize(("text", "message"), [
    ('[admin]\nlisten = "nowhere"\n', "admin.listen: expected HOST:PORT"),
    ('[admin]\nlisten = "127.0.0.1:80\u00b2"\n', "admin.listen: expected HOST:PORT"),  # isdigit(), not int()
    ('[admin]\nmetrics_public = "yes"\n', "admin.metrics_public: expected true or false"),
    ('[access_log]\ntarget = "syslog"\n', "access_log.target: expected file or journal"),
    ("[access_log]\nmax_bytes = 0\n", "access_log.max_bytes must be positive"),
    ("[access_log]\ndelivery_interval_seconds = -1\n", "access_log.delivery_interval_seconds: must be positive"),
    ('[alerts]\nwebhook_url = "file:///etc/passwd"\n', "alerts.webhook_url: expected an http:// or https:// URL"),
    ('[alerts]\nsmtp_host = "mail"\n', "alerts.smtp_host needs alerts.smtp_from and alerts.smtp_to"),
    ('[alerts]\nsmtp_to = "ops@x"\n', "alerts.smtp_to: expected an array of addresses"),
    ('[alerts]\nsmtp_to = [1, 2]\n', "alerts.smtp_to: expected an array of addresses"),
    ("[alerts]\npool_full_percent = 250\n", "alerts: pool_full_percent in (0, 100]"),
    ("[durability]\nafr_percent = 0\n", "durability: afr_percent in (0, 100)"),
    ("[durability]\nbogus = 1\n", "durability.bogus: unknown setting"),
    # every float is finite (TOML has nan and inf; `nan <= 0` is False, so range checks let it by)
    ("[gc]\ninterval_seconds = nan\n", "gc.interval_seconds: expected a finite number"),
    ("[s3]\nidle_timeout = nan\n", "s3.idle_timeout: expected a finite number"),
    ("[s3]\nheader_timeout = inf\n", "s3.header_timeout: expected a finite number"),
    ("[lifecycle]\nrestore_min_seconds = inf\n", "lifecycle.restore_min_seconds: expected a finite number"),
    ("[rebalance]\nsettle_seconds = inf\n", "rebalance.settle_seconds: expected a finite number"),
    ("[access_log]\ndelivery_interval_seconds = nan\n", "access_log.delivery_interval_seconds: expected a finite"),
    # the periods and timeouts the services sleep on
    ("[gc]\ninterval_seconds = 0\n", "gc.interval_seconds: must be positive"),
    ("[gc]\ngrace_seconds = -1\n", "gc.grace_seconds: must not be negative"),
    ("[snapshot]\ninterval_seconds = -5\n", "snapshot.interval_seconds: must be positive"),
    ("[scrub]\ninterval_hours = -1\n", "scrub.interval_hours: must be positive"),
    ("[notify]\ntimeout_seconds = 0\n", "notify.timeout_seconds: must be positive"),
    ("[notify]\nretry_max_seconds = -1\n", "notify.retry_max_seconds: must be positive"),
    ("[replication]\nretry_max_seconds = 0\n", "replication.retry_max_seconds: must be positive"),
    ("[lifecycle]\nrestore_min_seconds = -1\n", "lifecycle.restore_min_seconds: must not be negative"),
    # what goes into an HTTP (or mail) header or request line: no CR, LF or other control characters
    ('[notify.targets.h]\nurl = "http://127.0.0.1:9/"\nauth_header = "Bearer a\\r\\nX: 1"\n',
     "notify.targets.h.auth_header: must not contain control characters"),
    ('[notify.targets.h]\nurl = "http://127.0.0.1:9/"\nauth_header = "Bearer\\ta"\n',
     "notify.targets.h.auth_header: must not contain control characters"),
    ('[notify.targets.h]\nurl = "http://127.0.0.1:9/"\nauth_header = "Bearer \u20ac"\n',
     "notify.targets.h.auth_header: must be ASCII text"),
    ('[notify.targets.h]\nurl = "http://127.0.0.1:9/\\nX: 1"\n',
     "notify.targets.h.url: must not contain control characters"),
    ('[alerts]\nwebhook_url = "http://x/\\r\\nHost: y"\n', "alerts.webhook_url: must not contain control characters"),
    ('[s3]\nregion = "us-east-1\\r\\nX: 1"\n', "s3.region: must not contain control characters"),
    ('state_dir = "/srv/a\\u0000b"\n', "state_dir: must not contain a NUL character"),
])
def test_bad_values(tmp_path: Path, text: str, message: str) -> None:
    got = refused(tmp_path, text)
    assert message in got and "\n" not in got


def test_shipped_config_documents_every_section() -> None:
    shipped = (Path(__file__).resolve().parents[2] / "systemd" / "stowage.toml").read_text()
    for section in ("[admin]", "[access_log]", "[alerts]", "[durability]"):
        assert section in shipped
