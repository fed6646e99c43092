"""The operation table is checked at import: every name the router returns has a handler or a
not-implemented entry, and a misspelt name fails loudly instead of answering NotImplemented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s3gw import (
    ops_access,
    ops_attributes,
    ops_bucket,
    ops_bucket_tagging,
    ops_encryption,
    ops_list,
    ops_lock,
    ops_multipart,
    ops_object,
)
from s3gw.ctx import Ctx
from s3gw.http import Response
from s3gw.optable import OPERATIONS, OperationTableError, build_table
from s3gw.routing import REFUSED, Op, operation

REPO = Path(__file__).resolve().parents[2]
GROUPS = (ops_access.OPS, ops_attributes.OPS, ops_bucket.OPS, ops_bucket_tagging.OPS, ops_encryption.OPS,
          ops_list.OPS, ops_lock.OPS, ops_multipart.OPS, ops_object.OPS)


async def _handler(ctx: Ctx) -> Response:
    return Response(200)


def test_every_routed_name_has_a_handler_or_a_refusal() -> None:
    assert set(OPERATIONS) | set(REFUSED) == set(Op)
    assert not set(OPERATIONS) & set(REFUSED)


def test_a_misspelt_handler_name_is_refused() -> None:
    with pytest.raises(OperationTableError, match="'GetObjet' is not a name the router returns"):
        build_table((*GROUPS, {"GetObjet": _handler}), REFUSED)


def test_a_routed_name_without_handler_is_refused() -> None:
    objects = {name: h for name, h in ops_object.OPS.items() if name != Op.GetObject}
    with pytest.raises(OperationTableError, match="routed name 'GetObject' has no handler"):
        build_table((*(g for g in GROUPS if g is not ops_object.OPS), objects), REFUSED)


def test_a_handler_for_a_refused_name_is_refused() -> None:
    with pytest.raises(OperationTableError, match="'DeleteBucketSubresource' has a handler and is in the not-impl"):
        build_table((*GROUPS, {Op.DeleteBucketSubresource: _handler}), REFUSED)


def test_two_handlers_for_one_name_are_refused() -> None:
    with pytest.raises(OperationTableError, match="'GetObject' has two handlers"):
        build_table((*GROUPS, {Op.GetObject: _handler}), REFUSED)


def test_the_import_itself_fails_on_a_misspelt_name() -> None:
    code = ("import s3gw.ops_object as o; o.OPS['GetObjet'] = o.OPS.pop('GetObject'); import s3gw.optable")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "OperationTableError" in proc.stderr and "GetObjet" in proc.stderr


@pytest.mark.parametrize(("method", "bucket", "key", "query", "op"), [
    ("GET", "", "", {}, Op.ListBuckets),
    ("PUT", "", "", {}, Op.MethodNotAllowed),
    ("GET", "b", "", {"accelerate": ""}, Op.UnsupportedSubresource),
    ("GET", "b", "", {"lifecycle": ""}, Op.GetBucketLifecycleConfiguration),
    ("DELETE", "b", "", {"lifecycle": ""}, Op.DeleteBucketLifecycle),
    ("PUT", "b", "k", {"lifecycle": ""}, Op.UnsupportedSubresource),
    ("PUT", "b", "k", {"select": ""}, Op.UnsupportedSubresource),
    ("POST", "b", "k", {"restore": ""}, Op.RestoreObject),
    ("PUT", "b", "k", {"restore": ""}, Op.MethodNotAllowed),
    ("POST", "b", "", {"restore": ""}, Op.UnsupportedSubresource),
    ("PUT", "b", "k", {"retention": ""}, Op.PutObjectRetention),
    ("GET", "b", "k", {"legal-hold": ""}, Op.GetObjectLegalHold),
    ("DELETE", "b", "k", {"retention": ""}, Op.MethodNotAllowed),
    ("GET", "b", "", {"retention": ""}, Op.UnsupportedSubresource),
    ("GET", "b", "k", {"object-lock": ""}, Op.UnsupportedSubresource),
    ("PUT", "b", "", {"object-lock": ""}, Op.PutObjectLockConfiguration),
    ("DELETE", "b", "", {"object-lock": ""}, Op.MethodNotAllowed),
    ("GET", "b", "", {"tagging": ""}, Op.GetBucketTagging),
    ("DELETE", "b", "", {"cors-ish": ""}, Op.DeleteBucketSubresource),
    ("POST", "b", "", {}, Op.PostObject),
    ("POST", "b", "k", {}, Op.PostToKey),
    ("HEAD", "b", "k", {"acl": ""}, Op.MethodNotAllowed),
    ("PATCH", "b", "k", {}, Op.MethodNotAllowed),
    ("GET", "b", "", {"list-type": "2"}, Op.ListObjectsV2),
    ("PUT", "b", "k", {"uploadId": "u", "partNumber": "1"}, Op.UploadPart),
])
def test_routes_name_operations(method: str, bucket: str, key: str, query: dict[str, str], op: Op) -> None:
    assert operation(method, bucket, key, query, copy_source=False) is op


def test_a_handler_without_s3_actions_is_refused() -> None:
    from s3gw.authz import AUTHORIZED

    with pytest.raises(OperationTableError, match="'GetObject' has a handler but no S3 action"):
        build_table(GROUPS, REFUSED, AUTHORIZED - {Op.GetObject})
