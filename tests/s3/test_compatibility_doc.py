"""docs/s3-compatibility.md against the gateway: the table has one row for every operation of
the S3 API (botocore's service model, the one the AWS SDKs are generated from), each row marked
supported or partial is routed to its own handler, every operation the gateway serves is marked
so, and every request the model describes that the gateway does not serve is refused, never
answered by another operation's handler."""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session
import pytest
from botocore.model import OperationModel

from s3gw.optable import OPERATIONS
from s3gw.routing import REFUSED, Op, route

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3-compatibility.md"
STATUSES = ("supported", "partial", "not implemented")
_ROW = re.compile(r"^\|\s*`?([A-Za-z0-9]+)`?\s*\|\s*([a-z ]+?)\s*\|")
# Requests the model describes exactly like a served operation's: answered as that one.
SAME_REQUEST = {"ListDirectoryBuckets": Op.ListBuckets,
                "GetBucketNotification": Op.GetBucketNotificationConfiguration,
                "PutBucketNotification": Op.PutBucketNotificationConfiguration,
                "GetBucketLifecycle": Op.GetBucketLifecycleConfiguration,
                "PutBucketLifecycle": Op.PutBucketLifecycleConfiguration}

MODEL = botocore.session.get_session().get_service_model("s3")


def doc_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        m = _ROW.match(line)
        if m is None or m.group(2) not in STATUSES:
            continue
        name, status = m.groups()
        assert name not in rows, f"{name} has two rows"
        rows[name] = status
    return rows


def routed(op: OperationModel) -> Op:
    """Where the gateway routes the request the SDK sends for `op` (with its required query
    parameters and, for copies, x-amz-copy-source)."""
    path, _, literal_query = op.http["requestUri"].partition("?")
    path = path.replace("{Bucket}", "bkt").replace("{Key+}", "k")
    query = [q for q in literal_query.split("&") if q]
    copy_source = False
    shape = op.input_shape
    for name, member in (shape.members.items() if shape is not None else ()):
        where = member.serialization.get("location")
        if where == "querystring" and name in shape.required_members:
            query.append(f"{member.serialization['name']}=1")
        if where == "header" and member.serialization["name"].lower() == "x-amz-copy-source":
            copy_source = True
    target = path + ("?" + "&".join(query) if query else "")
    return route(op.http["method"], target, "localhost", "", copy_source).op


def test_every_operation_of_the_api_has_one_row() -> None:
    rows = doc_rows()
    assert sorted(set(MODEL.operation_names) - rows.keys()) == []
    # rows for operations newer than the botocore installed here (a clean install gets the newest)
    newer = {"GetBucketDefaultStorageClass", "PutBucketDefaultStorageClass", "GetPart"}
    assert sorted(rows.keys() - set(MODEL.operation_names) - newer) == []


@pytest.mark.parametrize("name", sorted(n for n, s in doc_rows().items() if s != "not implemented"))
def test_a_served_row_is_routed_to_its_handler(name: str) -> None:
    op = Op(name)  # ValueError: the router has no such name
    assert op in OPERATIONS and op not in REFUSED
    assert routed(MODEL.operation_model(name)) is op


def test_every_served_operation_is_marked_so() -> None:
    """When an operation gets its handler, its row must say so (no row stays 'not implemented')."""
    rows = doc_rows()
    served = {op.value for op in OPERATIONS} & set(MODEL.operation_names)
    assert sorted(n for n in served if rows[n] == "not implemented") == []


@pytest.mark.parametrize("name", sorted(n for n, s in doc_rows().items()
                                         if s == "not implemented" and n in MODEL.operation_names))
def test_a_not_implemented_row_is_refused(name: str) -> None:
    got = routed(MODEL.operation_model(name))
    assert got in REFUSED or SAME_REQUEST.get(name) is got, f"{name} would be answered by {got.value}"
