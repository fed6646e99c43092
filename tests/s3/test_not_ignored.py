"""Request parameters AWS documents that the gateway does not implement are refused, never
accepted and ignored: each case here was once answered 200 with the parameter dropped."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return int(r["ResponseMetadata"]["HTTPStatusCode"]), str(r["Error"]["Code"])


@pytest.mark.parametrize("condition", [{"ETag": '"0123456789abcdef0123456789abcdef"'}, {"Size": 4},
                                       {"LastModifiedTime": "2020-01-01T00:00:00Z"}],
                         ids=["ETag", "Size", "LastModifiedTime"])
def test_conditional_delete_objects_is_refused_and_deletes_nothing(s3: Any, bucket: str,
                                                                   condition: dict[str, Any]) -> None:
    """An Object's ETag (or Size, LastModifiedTime) in DeleteObjects makes its deletion
    conditional: the gateway does not evaluate them, so it must not delete unconditionally."""
    s3.put_object(Bucket=bucket, Key="keep", Body=b"kept")
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other"}, {"Key": "keep", **condition}]})
    assert _code(exc) == (501, "NotImplemented")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["keep", "other"]
