"""A notification target's values go into HTTP requests: one with a line break in its auth
header was accepted, and its first delivery raised ValueError out of the delivery worker, which
ended the daemon at every start until the target was removed (with no daemon to remove it)."""

from __future__ import annotations

import pytest

from appliance.services.notifytargets import DeliveryFailed, TargetError, Webhook, check_definition, new_record


class _Plain:
    """The master key's wrap, for new_record (refused before it is used)."""

    def wrap(self, data: bytes, context: str) -> bytes:
        return data


@pytest.mark.parametrize("header", ["Bearer a\r\nX-Injected: 1", "Bearer \x00", "Bearer caf\u00e9", "a\tb"])
def test_an_auth_header_a_request_cannot_carry_is_refused_when_added(header: str) -> None:
    with pytest.raises(TargetError, match="auth header"):
        new_record("hook", "webhook", {"url": "http://127.0.0.1:9/"}, header, _Plain())  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999/", "http://host:port/", "http:///path",
                                 "http://host/a b", "http://host/\r\nX: 1"])
def test_a_webhook_url_that_does_not_parse_is_refused(url: str) -> None:
    with pytest.raises(TargetError):
        check_definition("webhook", {"url": url})
    check_definition("webhook", {"url": "http://127.0.0.1:8080/hook?x=1"})


def test_a_stored_target_with_a_bad_header_fails_its_deliveries_not_the_daemon() -> None:
    """A target stored before the check (or edited into the DB) is a failed delivery."""
    hook = Webhook("hook", "http://127.0.0.1:9/", "Bearer a\r\nX-Injected: 1", timeout=1.0)
    with pytest.raises(DeliveryFailed):
        hook._post(b"{}")


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999/", "https://"])
def test_a_replication_endpoint_that_does_not_parse_is_refused(url: str) -> None:
    from appliance.services.replicatargets import new_record as new_replication_target

    with pytest.raises(TargetError, match="endpoint"):
        new_replication_target("peer", "s3", {"endpoint": url, "access_key": "AK", "bucket": "b"}, "secret",
                               _Plain())  # type: ignore[arg-type]
