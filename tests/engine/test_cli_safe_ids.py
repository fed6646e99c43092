"""IDs a user passes to a command-line client never begin with "-" (argparse, as in the aws CLI,
reads `--upload-id -dU0…` as a missing argument; a CI run failed that way on 1 ID in 64)."""

from __future__ import annotations

import pytest

from appliance.engine import entropy
from appliance.engine.names import cli_safe_token
from appliance.engine.objectstore import PutMeta, new_version_id
from appliance.iam.credentials import new_secret_key


def test_a_token_beginning_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-dU0srNs", "_x-y", "unused"])
    monkeypatch.setattr(entropy, "token_urlsafe", lambda nbytes: next(drawn))
    assert cli_safe_token(24) == "_x-y"


def test_version_ids_and_secret_keys_never_begin_with_a_dash() -> None:
    # 4,000 draws of the plain token_urlsafe begin with "-" at least once with p = 1 - (63/64)^4000
    ids = [new_version_id() for _ in range(4000)] + [new_secret_key() for _ in range(4000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(k) == 40 for k in ids[4000:])


async def test_upload_and_version_ids_never_begin_with_a_dash(store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = entropy.token_urlsafe
    dashes = iter(["-up", "-ver"])  # each ID's first draw begins with "-"
    monkeypatch.setattr(entropy, "token_urlsafe", lambda nbytes: next(dashes, None) or real(nbytes))
    up = await store.create_multipart("bkt", "mp", PutMeta())
    await store.set_versioning("bkt", "Enabled")
    v = await store.put_object("bkt", "k", b"x")
    assert not up.upload_id.startswith("-") and up.upload_id != "-up"
    assert not v.version_id.startswith("-") and v.version_id not in ("-up", "-ver")
    assert next(dashes, None) is None  # both were drawn (and refused)
