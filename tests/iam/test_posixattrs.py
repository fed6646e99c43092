"""POSIX attributes in S3 user metadata: mode forms, setuid/setgid removal, who may set them."""

from __future__ import annotations

import json
import stat

import pytest

from appliance.iam.canned import CANNED
from appliance.iam.policy import Policy, Principal, parse_policy
from appliance.iam.posixattrs import carries_posix, may_put_posix, parse_mode, without_setid

ROOT = Principal.root()
ALICE = Principal.user("alice")


@pytest.mark.parametrize(("text", "mode"), [
    ("33188", stat.S_IFREG | 0o644),  # s3fs: decimal st_mode
    ("100644", stat.S_IFREG | 0o644),  # rclone: octal with the type
    ("0644", 0o644),  # octal permission bits only
    ("755", 0o755),  # not a valid decimal st_mode: octal
    ("4516", stat.S_IFIFO | 0o644), ("8630", stat.S_IFCHR | 0o666),  # s3fs's special files: decimal
    ("", None), ("x", None), (None, None),
])
def test_parse_mode(text: str | None, mode: int | None) -> None:
    assert parse_mode(text) == mode


@pytest.mark.parametrize(("text", "stripped"), [
    (str(stat.S_IFREG | 0o4755), str(stat.S_IFREG | 0o755)),  # decimal stays decimal
    (str(stat.S_IFREG | 0o6755), str(stat.S_IFREG | 0o755)),
    ("104755", "100755"),  # octal stays octal, same width
    ("02755", "00755"),
    ("1777", "1777"),  # the sticky bit is no power over others' files: kept
    (str(stat.S_IFREG | 0o644), str(stat.S_IFREG | 0o644)),
])
def test_setuid_and_setgid_are_dropped(text: str, stripped: str) -> None:
    assert without_setid({"mode": text, "mtime": "1"}) == {"mode": stripped, "mtime": "1"}


def test_which_metadata_are_posix_attributes() -> None:
    assert carries_posix({"mode": "33188"}) and carries_posix({"uid": "0"}) and carries_posix({"gid": "0"})
    assert not carries_posix({"mtime": "1700000000", "xattr": "%7B%7D", "color": "blue"})


def _bucket_policy(*statements: dict[str, object]) -> Policy:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), "resource",
                        bucket="b")


def test_who_may_put_posix_attributes() -> None:
    ctx: dict[str, str] = {}
    assert may_put_posix(ROOT, (), None, "b", "k", ctx)
    assert not may_put_posix(ALICE, (), None, "b", "k", ctx)
    # s3:* is not enough: the permission is the appliance's own action
    readwrite = parse_policy(CANNED["readwrite"], "identity", name="readwrite")
    assert not may_put_posix(ALICE, (readwrite,), None, "b", "k", ctx)
    admin = parse_policy(CANNED["admin"], "identity", name="admin")
    assert may_put_posix(ALICE, (admin,), None, "b", "k", ctx)
    grant = _bucket_policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
                            "Action": "stowage:PutPosixAttributes", "Resource": "arn:aws:s3:::b/home/*"})
    assert may_put_posix(ALICE, (), grant, "b", "home/x", ctx)
    assert not may_put_posix(ALICE, (), grant, "b", "elsewhere", ctx)
    deny = _bucket_policy({"Effect": "Deny", "Principal": "*", "Action": "stowage:*", "Resource": "arn:aws:s3:::b/*"})
    assert not may_put_posix(ROOT, (), deny, "b", "k", ctx)
