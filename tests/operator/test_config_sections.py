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
])
def test_bad_values(tmp_path: Path, text: str, message: str) -> None:
    got = refused(tmp_path, text)
    assert message in got and "\n" not in got


def test_shipped_config_documents_every_section() -> None:
    shipped = (Path(__file__).resolve().parents[2] / "systemd" / "stowage.toml").read_text()
    for section in ("[admin]", "[access_log]", "[alerts]", "[durability]"):
        assert section in shipped
