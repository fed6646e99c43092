"""Policy evaluation, table-driven, against the real daemon: IAM users made with the gateway's
IAM API (one of them with a path), real boto3 clients signed with their keys, and an anonymous
client. Each row sets the user's inline policy and the bucket policy, makes one request, and
compares the answer with what AWS's documented evaluation logic gives ("IAM policy evaluation
logic", "IAM JSON policy elements", "policy variables", S3's "actions, resources, and condition
keys"). Presigned URLs and access keys changed after signing are at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

B = "pmatrix"
ARN = f"arn:aws:s3:::{B}"
OBJ = f"{ARN}/*"
OK, DENIED = "ok", "AccessDenied"
SSE = "s3:x-amz-server-side-encryption"


def doc(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def everyone(statement: dict[str, Any]) -> dict[str, Any]:
    return {**statement, "Principal": "*"}


def s3_client(endpoint: str, access_key: str | None = None, secret: str | None = None) -> Any:
    cfg: dict[str, Any] = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}}
    if access_key is None:
        cfg["signature_version"] = botocore.UNSIGNED
    else:
        cfg["signature_version"] = "s3v4"
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(**cfg))


@dataclass
class World:
    root: Any
    iam: Any
    clients: dict[str, Any] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)  # user or bucket -> its policy now

    def add_user(self, name: str, path: str = "/") -> None:
        endpoint = self.root.meta.endpoint_url
        self.arns[name] = self.iam.create_user(UserName=name, Path=path)["User"]["Arn"]
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        self.keys[name] = key
        self.clients[name] = s3_client(endpoint, key["AccessKeyId"], key["SecretAccessKey"])

    def set_policies(self, user: str, identity: list[dict[str, Any]] | None,
                     bucket: list[dict[str, Any]] | None) -> None:
        """The user's inline policy and the bucket policy (None: none), written when changed."""
        want = None if identity is None else doc(identity)
        if self.current.get(user, "") != want:
            if want is None:
                self.iam.delete_user_policy(UserName=user, PolicyName="matrix")
            else:
                self.iam.put_user_policy(UserName=user, PolicyName="matrix", PolicyDocument=want)
            self.current[user] = want
        want = None if bucket is None else doc(bucket)
        if self.current.get(B, "") != want:
            if want is None:
                self.root.delete_bucket_policy(Bucket=B)
            else:
                self.root.put_bucket_policy(Bucket=B, Policy=want)
            self.current[B] = want


@pytest.fixture(scope="module")
def world(s3d: Any, s3: Any) -> Iterator[World]:
    iam = boto3.client("iam", endpoint_url=s3d.endpoint, aws_access_key_id=s3d.access_key,
                       aws_secret_access_key=s3d.secret_key, region_name="us-east-1")
    w = World(s3, iam)
    s3.create_bucket(Bucket=B)
    for key in ("x", "home/alice/a", "home/carol/c", "pub/p", "Cap/k1"):
        s3.put_object(Bucket=B, Key=key, Body=b"data")
    s3.put_object(Bucket=B, Key="pub/tagged", Body=b"data", Tagging="class=secret")
    w.add_user("alice")
    w.add_user("carol", path="/team/")  # ARN arn:aws:iam::ACCOUNT:user/team/carol
    w.arns["account"] = w.arns["alice"].split(":user/")[0] + ":root"  # the account principal
    w.clients["anon"] = s3_client(s3d.endpoint)
    w.current.update({"alice": None, "carol": None, B: None})
    yield w


Op = Callable[[Any], Any]


def get(key: str = "x", **kw: Any) -> Op:
    return lambda c: c.get_object(Bucket=B, Key=key, **kw)["Body"].read()


def head(key: str = "x", **kw: Any) -> Op:
    return lambda c: c.head_object(Bucket=B, Key=key, **kw)


def put(key: str = "new/k", **kw: Any) -> Op:
    return lambda c: c.put_object(Bucket=B, Key=key, Body=b"w", **kw)


def listing(**kw: Any) -> Op:
    return lambda c: c.list_objects_v2(Bucket=B, **kw)


def copy(src: str, dst: str = "new/copy", version: str | None = None, **kw: Any) -> Op:
    source = {"Bucket": B, "Key": src, **({"VersionId": version} if version is not None else {})}
    return lambda c: c.copy_object(Bucket=B, Key=dst, CopySource=source, **kw)


def multipart(key: str = "new/mpu", copy_from: str | None = None, **create: Any) -> Op:
    """Create, one part (uploaded, or copied from `copy_from`), complete."""
    def run(c: Any) -> None:
        up = c.create_multipart_upload(Bucket=B, Key=key, **create)["UploadId"]
        if copy_from is None:
            etag = c.upload_part(Bucket=B, Key=key, UploadId=up, PartNumber=1, Body=b"part")["ETag"]
        else:
            etag = c.upload_part_copy(Bucket=B, Key=key, UploadId=up, PartNumber=1,
                                      CopySource=f"{B}/{copy_from}")["CopyPartResult"]["ETag"]
        c.complete_multipart_upload(Bucket=B, Key=key, UploadId=up,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    return run


# Reading pub/* and writing new/*: what a copy of an untagged object needs.
COPIER = [allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObject", f"{ARN}/pub/*")]
# AWS's documented bucket policy requiring SSE-S3 on every upload ("Protecting data with SSE-S3").
REQUIRE_SSE = [everyone({**deny("s3:PutObject", OBJ), "Condition": {"StringNotEquals": {SSE: "AES256"}}}),
               everyone({**deny("s3:PutObject", OBJ), "Condition": {"Null": {SSE: "true"}}})]


@dataclass(frozen=True)
class Case:
    id: str
    who: str  # "alice", "carol" (path /team/) or "anon"
    op: Op
    want: str
    identity: list[dict[str, Any]] | None = None  # the user's inline policy (None: none)
    bucket: list[dict[str, Any]] | None = None  # the bucket policy (None: none); "{carol}" is her ARN


CASES = [
    # the evaluation order: explicit Deny anywhere beats every Allow; nothing allows: implicit deny
    Case("no-policy", "alice", get(), DENIED),
    Case("identity-allow", "alice", get(), OK, identity=[allow("s3:GetObject", OBJ)]),
    Case("bucket-allow-user", "alice", get(), OK, bucket=[{**allow("s3:GetObject", OBJ),
                                                            "Principal": {"AWS": "{alice}"}}]),
    Case("bucket-deny-beats-identity-allow", "alice", get(), DENIED, identity=[allow("s3:*")],
         bucket=[everyone(deny("s3:GetObject", OBJ))]),
    Case("identity-deny-beats-bucket-allow", "alice", get(), DENIED, identity=[deny("s3:GetObject")],
         bucket=[everyone(allow("s3:GetObject", OBJ))]),
    # actions: case-insensitive, wildcards; NotAction
    Case("action-case-and-star", "alice", get(), OK, identity=[allow("S3:get*", OBJ)]),
    Case("action-question-mark", "alice", get(), OK, identity=[allow("s3:GetObjec?", OBJ)]),
    Case("notaction-allow", "alice", get(), OK, identity=[{"Effect": "Allow", "NotAction": "s3:Delete*",
                                                            "Resource": "*"}]),
    Case("notaction-deny", "alice", put(), DENIED, identity=[allow("s3:*"), {"Effect": "Deny",
                                                                              "NotAction": "s3:Get*",
                                                                              "Resource": "*"}]),
    # resources: case-sensitive, `?` is one character; NotResource
    Case("resource-case", "alice", get("Cap/k1"), DENIED, identity=[allow("s3:GetObject", f"{ARN}/cap/*")]),
    Case("resource-question", "alice", get("Cap/k1"), OK, identity=[allow("s3:GetObject", f"{ARN}/Cap/k?")]),
    Case("resource-question-one-char", "alice", get("Cap/k1"), DENIED,
         identity=[allow("s3:GetObject", f"{ARN}/Cap/?")]),
    Case("notresource-deny", "alice", get("x"), DENIED, identity=[allow("s3:*"), {
        "Effect": "Deny", "Action": "s3:GetObject", "NotResource": f"{ARN}/pub/*"}]),
    Case("notresource-deny-spares", "alice", get("pub/p"), OK, identity=[allow("s3:*"), {
        "Effect": "Deny", "Action": "s3:GetObject", "NotResource": f"{ARN}/pub/*"}]),
    # principals: "*" includes anonymous; NotPrincipal; a user with a path is named by its full ARN
    Case("anon-principal-star", "anon", get("pub/p"), OK, bucket=[everyone(allow("s3:GetObject", f"{ARN}/pub/*"))]),
    Case("anon-not-granted", "anon", get("x"), DENIED, bucket=[everyone(allow("s3:GetObject", f"{ARN}/pub/*"))]),
    Case("notprincipal-deny", "anon", get("pub/p"), DENIED, bucket=[
        everyone(allow("s3:GetObject", OBJ)),
        {**deny("s3:GetObject", OBJ), "NotPrincipal": {"AWS": "{alice}"}}]),
    Case("notprincipal-deny-spares", "alice", get("pub/p"), OK, bucket=[
        everyone(allow("s3:GetObject", OBJ)),
        {**deny("s3:GetObject", OBJ), "NotPrincipal": {"AWS": "{alice}"}}]),
    Case("path-user-principal-deny", "carol", get(), DENIED, identity=[allow("s3:*")],
         bucket=[{**deny("s3:GetObject", OBJ), "Principal": {"AWS": "{carol}"}}]),
    Case("path-user-principal-allow", "carol", get(), OK,
         bucket=[{**allow("s3:GetObject", OBJ), "Principal": {"AWS": "{carol}"}}]),
    Case("path-user-principalarn-deny", "carol", get(), DENIED, identity=[allow("s3:*")], bucket=[
        everyone({**deny("s3:GetObject", OBJ), "Condition": {"StringEquals": {"aws:PrincipalArn": "{carol}"}}})]),
    Case("path-user-arnlike", "carol", get(), OK, identity=[{**allow("s3:GetObject", OBJ), "Condition": {
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/team/*"}}}]),
    # the account principal delegates to the account (AWS): an Allow naming it grants the
    # account's users nothing their identity policies do not; a Deny naming it binds them all
    Case("account-principal-allow-grants-no-user", "alice", get(), DENIED,
         bucket=[{**allow("s3:GetObject", OBJ), "Principal": {"AWS": "{account}"}}]),
    Case("account-principal-allow-with-identity", "alice", get(), OK, identity=[allow("s3:GetObject", OBJ)],
         bucket=[{**allow("s3:GetObject", OBJ), "Principal": {"AWS": "{account}"}}]),
    Case("account-principal-deny-binds-users", "carol", get(), DENIED, identity=[allow("s3:*")],
         bucket=[{**deny("s3:GetObject", OBJ), "Principal": {"AWS": "{account}"}}]),
    # conditions: operators, several values OR, several keys AND, missing keys
    Case("prefix-like", "alice", listing(Prefix="home/alice/"), OK, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}}]),
    Case("prefix-like-other", "alice", listing(Prefix="home/carol/"), DENIED, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}}]),
    Case("prefix-missing", "alice", listing(), DENIED, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringLike": {"s3:prefix": "home/*"}}}]),
    Case("prefix-or-values", "alice", listing(Prefix="pub/"), OK, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringEquals": {"s3:prefix": ["home/", "pub/"]}}}]),
    Case("keys-and", "alice", listing(Prefix="pub/"), DENIED, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringEquals": {"s3:prefix": "pub/", "s3:delimiter": "/"}}}]),
    Case("keys-and-both", "alice", listing(Prefix="pub/", Delimiter="/"), OK, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"StringEquals": {"s3:prefix": "pub/", "s3:delimiter": "/"}}}]),
    Case("max-keys", "alice", listing(MaxKeys=500), DENIED, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"NumericLessThanEquals": {"s3:max-keys": "100"}}}]),
    Case("max-keys-ok", "alice", listing(MaxKeys=50), OK, identity=[{
        **allow("s3:ListBucket", ARN), "Condition": {"NumericLessThanEquals": {"s3:max-keys": "100"}}}]),
    Case("not-equals-missing-key-denies", "alice", put(), DENIED, identity=[allow("s3:*")], bucket=[everyone({
        **deny("s3:PutObject", OBJ), "Condition": {"StringNotEquals": {SSE: "AES256"}}})]),
    Case("ifexists-missing-holds", "alice", put(), DENIED, identity=[allow("s3:*")], bucket=[everyone({
        **deny("s3:PutObject", OBJ),
        "Condition": {"StringNotEqualsIfExists": {SSE: "AES256"}}})]),
    Case("ifexists-missing-allows", "alice", put(), OK, identity=[{**allow("s3:PutObject", OBJ), "Condition": {
        "StringEqualsIfExists": {SSE: "AES256"}}}]),
    Case("ifexists-present-checked", "alice", put(ServerSideEncryption="aws:kms"), DENIED, identity=[{
        **allow("s3:PutObject", OBJ), "Condition": {"StringEqualsIfExists": {SSE: "AES256"}}}]),
    Case("sse-header-satisfies", "alice", put(ServerSideEncryption="AES256"), OK, identity=[allow("s3:*")],
         bucket=[everyone({**deny("s3:PutObject", OBJ),
                           "Condition": {"Null": {SSE: "true"}}})]),
    Case("null-true", "alice", put(), DENIED, identity=[allow("s3:*")], bucket=[everyone({
        **deny("s3:PutObject", OBJ), "Condition": {"Null": {SSE: "true"}}})]),
    Case("secure-transport", "alice", get(), DENIED, identity=[allow("s3:*")], bucket=[everyone({
        **deny("s3:*", [ARN, OBJ]), "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]),
    Case("source-ip", "anon", get("pub/p"), OK, bucket=[everyone({
        **allow("s3:GetObject", OBJ), "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})]),
    Case("not-source-ip", "anon", get("pub/p"), DENIED, bucket=[everyone({
        **allow("s3:GetObject", OBJ), "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})]),
    Case("date-past", "alice", get(), DENIED, identity=[{**allow("s3:GetObject", OBJ), "Condition": {
        "DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]),
    Case("date-future", "alice", get(), OK, identity=[{**allow("s3:GetObject", OBJ), "Condition": {
        "DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}}]),
    Case("for-any-value-tags", "alice", put(Tagging="team=a&x=y"), OK, identity=[
        allow(["s3:PutObject", "s3:PutObjectTagging"], OBJ),
        {**deny("s3:PutObjectTagging"), "Condition": {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "z"}}}]),
    Case("for-any-value-tags-hit", "alice", put(Tagging="team=a&z=y"), DENIED, identity=[
        allow(["s3:PutObject", "s3:PutObjectTagging"], OBJ),
        {**deny("s3:PutObjectTagging"), "Condition": {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "z"}}}]),
    Case("for-all-values-tags", "alice", put(Tagging="team=a&z=y"), DENIED, identity=[{
        **allow(["s3:PutObject", "s3:PutObjectTagging"], OBJ),
        "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "x"]}}}]),
    # policy variables, the escapes, and variables without a value (anonymous has no username)
    Case("var-userid", "alice", get("x"), DENIED, identity=[{**allow("s3:GetObject", OBJ), "Condition": {
        "StringEquals": {"aws:userid": "${aws:username}"}}}]),  # the user id is AIDA..., not the name
    Case("var-escape", "alice", get("x"), DENIED, identity=[allow("s3:GetObject", f"{ARN}/${{*}}")]),
    Case("var-resource", "alice", get("home/alice/a"), OK, identity=[allow("s3:GetObject",
                                                                          f"{ARN}/home/${{aws:username}}/*")]),
    Case("var-resource-other", "alice", get("home/carol/c"), DENIED, identity=[allow(
        "s3:GetObject", f"{ARN}/home/${{aws:username}}/*")]),
    Case("var-unresolved-notresource", "anon", get("x"), DENIED, bucket=[everyone({
        "Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{ARN}/home/${{aws:username}}/*"})]),
    Case("var-unresolved-not-equals", "anon", get("x"), DENIED, bucket=[everyone({
        **allow("s3:GetObject", OBJ), "Condition": {"StringNotEquals": {"aws:PrincipalArn": "${aws:username}"}}})]),
    Case("var-unresolved-not-like", "anon", get("x"), DENIED, bucket=[everyone({
        **allow("s3:GetObject", OBJ), "Condition": {"StringNotLike": {"aws:userid": "${aws:username}*"}}})]),
    Case("var-unresolved-deny-still-denies", "anon", get("x"), DENIED, bucket=[
        everyone(allow("s3:GetObject", OBJ)),
        everyone({"Effect": "Deny", "Action": "s3:GetObject", "NotResource": f"{ARN}/home/${{aws:username}}/*"})]),
    Case("var-default", "anon", get("pub/p"), OK, bucket=[everyone(allow(
        "s3:GetObject", f"{ARN}/${{aws:username, 'pub'}}/*"))]),
    # the action each operation asks for
    Case("head-is-getobject", "alice", head(), OK, identity=[allow("s3:GetObject", OBJ)]),
    Case("version-needs-getobjectversion", "alice", get(VersionId="null"), DENIED,
         identity=[allow("s3:GetObject", OBJ)]),
    Case("version-getobjectversion", "alice", get(VersionId="null"), OK, identity=[allow("s3:GetObjectVersion", OBJ)]),
    Case("list-versions", "alice", lambda c: c.list_object_versions(Bucket=B), DENIED,
         identity=[allow("s3:ListBucket", ARN)]),
    Case("list-versions-ok", "alice", lambda c: c.list_object_versions(Bucket=B), OK,
         identity=[allow("s3:ListBucketVersions", ARN)]),
    Case("put-tagging-needs-puttagging", "alice", put(Tagging="a=b"), DENIED, identity=[allow("s3:PutObject", OBJ)]),
    Case("put-acl-needs-putacl", "alice", put(ACL="public-read"), DENIED, identity=[allow("s3:PutObject", OBJ)]),
    Case("multipart-is-putobject", "alice", multipart(), OK, identity=[allow("s3:PutObject", OBJ)]),
    Case("copy-needs-source-read", "alice", copy("home/carol/c"), DENIED, identity=[
        allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObject", f"{ARN}/pub/*")]),
    Case("copy-ok", "alice", copy("pub/p"), OK, identity=[
        allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObject", f"{ARN}/pub/*")]),
    Case("copy-needs-dest-write", "alice", copy("pub/p", "x2"), DENIED, identity=[
        allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObject", f"{ARN}/pub/*")]),
    # copying a source's tags (COPY, the default) reads and writes tags: AWS asks
    # s3:GetObjectTagging of the source and s3:PutObjectTagging of the destination
    Case("copy-tags-needs-source-tagging", "alice", copy("pub/tagged"), DENIED,
         identity=[*COPIER, allow("s3:PutObjectTagging", f"{ARN}/new/*")]),
    Case("copy-tags-needs-dest-tagging", "alice", copy("pub/tagged"), DENIED,
         identity=[*COPIER, allow("s3:GetObjectTagging", f"{ARN}/pub/*")]),
    Case("copy-tags-ok", "alice", copy("pub/tagged"), OK, identity=[
        *COPIER, allow("s3:GetObjectTagging", f"{ARN}/pub/*"), allow("s3:PutObjectTagging", f"{ARN}/new/*")]),
    Case("copy-tags-bucket-deny", "alice", copy("pub/tagged"), DENIED, identity=[allow("s3:*")],
         bucket=[everyone(deny("s3:GetObjectTagging", OBJ))]),
    Case("copy-tags-explicit-copy", "alice", copy("pub/tagged", TaggingDirective="COPY"), DENIED,
         identity=[*COPIER, allow("s3:PutObjectTagging", f"{ARN}/new/*")]),
    Case("copy-tags-replaced-reads-none", "alice", copy("pub/tagged", TaggingDirective="REPLACE", Tagging="a=b"),
         OK, identity=[*COPIER, allow("s3:PutObjectTagging", f"{ARN}/new/*")]),
    Case("copy-version-tags-need-version-tagging", "alice", copy("pub/tagged", version="null"), DENIED, identity=[
        allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObjectVersion", f"{ARN}/pub/*"),
        allow(["s3:GetObjectTagging", "s3:PutObjectTagging"], OBJ)]),
    Case("copy-version-tags-ok", "alice", copy("pub/tagged", version="null"), OK, identity=[
        allow("s3:PutObject", f"{ARN}/new/*"), allow("s3:GetObjectVersion", f"{ARN}/pub/*"),
        allow(["s3:GetObjectVersionTagging", "s3:PutObjectTagging"], OBJ)]),
    Case("part-copy-copies-no-tags", "alice", multipart(copy_from="pub/tagged"), OK, identity=COPIER),
    # the parts of an upload created with SSE pass a policy requiring SSE (their requests cannot
    # carry the header: the upload's encryption fills the condition keys)
    Case("require-sse-multipart", "alice", multipart(ServerSideEncryption="AES256"), OK, identity=[allow("s3:*")],
         bucket=REQUIRE_SSE),
    Case("require-sse-part-copy", "alice", multipart(copy_from="pub/p", ServerSideEncryption="AES256"), OK,
         identity=[allow("s3:*")], bucket=REQUIRE_SSE),
    Case("require-sse-multipart-unencrypted", "alice", multipart(), DENIED, identity=[allow("s3:*")],
         bucket=REQUIRE_SSE),
    Case("require-sse-multipart-other-mode", "alice", multipart(ServerSideEncryption="aws:kms"), DENIED,
         identity=[allow("s3:*")], bucket=REQUIRE_SSE),
]


def _fill(value: Any, arns: dict[str, str]) -> Any:
    """The "{alice}" / "{carol}" / "{account}" placeholders of a policy, as the users' (the account's) ARNs."""
    if isinstance(value, str):
        return arns.get(value[1:-1], value) if value.startswith("{") and value.endswith("}") else value
    if isinstance(value, list):
        return [_fill(v, arns) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, arns) for k, v in value.items()}
    return value


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return OK


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_matrix(world: World, case: Case) -> None:
    user = case.who if case.who != "anon" else "alice"
    world.set_policies(user, _fill(case.identity, world.arns), _fill(case.bucket, world.arns))
    assert outcome(lambda: case.op(world.clients[case.who])) == case.want


def test_group_deny_beats_user_and_bucket_allow(world: World) -> None:
    world.iam.create_group(GroupName="matrix-deniers")
    world.iam.put_group_policy(GroupName="matrix-deniers", PolicyName="no-get",
                               PolicyDocument=doc([deny("s3:GetObject", f"{ARN}/x")]))
    world.set_policies("alice", [allow("s3:GetObject", OBJ)],
                       [{**allow("s3:GetObject", OBJ), "Principal": {"AWS": world.arns["alice"]}}])
    alice = world.clients["alice"]
    try:
        assert outcome(lambda: get("x")(alice)) == OK
        world.iam.add_user_to_group(GroupName="matrix-deniers", UserName="alice")
        assert outcome(lambda: get("x")(alice)) == DENIED
        assert outcome(lambda: get("pub/p")(alice)) == OK
    finally:
        world.iam.remove_user_from_group(GroupName="matrix-deniers", UserName="alice")
        world.set_policies("alice", None, None)


def test_delete_objects_asks_per_key(world: World) -> None:
    world.set_policies("alice", None, None)  # no bucket policy left by a matrix row refuses the root's put
    world.root.put_object(Bucket=B, Key="new/d1", Body=b"1")
    world.set_policies("alice", [allow("s3:DeleteObject", f"{ARN}/new/*")], None)
    try:
        r = world.clients["alice"].delete_objects(Bucket=B, Delete={"Objects": [{"Key": "new/d1"}, {"Key": "x"}]})
        assert [o["Key"] for o in r["Deleted"]] == ["new/d1"]
        assert [(o["Key"], o["Code"]) for o in r["Errors"]] == [("x", DENIED)]
    finally:
        world.set_policies("alice", None, None)


def test_require_kms_key_multipart(world: World) -> None:
    """A policy requiring one KMS key: the parts of an upload created with that key pass (the
    key id is the upload's, as its ARN), an upload created without naming it does not."""
    world.set_policies("alice", None, None)  # no bucket policy left by a matrix row refuses the probe
    arn = world.root.put_object(Bucket=B, Key="new/kms-probe", Body=b"k", ServerSideEncryption="aws:kms")[
        "SSEKMSKeyId"]
    world.set_policies("alice", [allow("s3:*")], [everyone({**deny("s3:PutObject", OBJ), "Condition": {
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": arn}}})])
    alice = world.clients["alice"]
    try:
        assert outcome(lambda: multipart(ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)(alice)) == OK
        assert outcome(lambda: multipart(ServerSideEncryption="aws:kms")(alice)) == DENIED
    finally:
        world.set_policies("alice", None, None)


def test_aws_cli_large_upload_under_require_sse(world: World, tmp_path: Path) -> None:
    """`aws s3 cp --sse AES256` of a file above the CLI's 8 MiB multipart threshold, under AWS's
    documented policy requiring SSE: it uploads (multipart, encrypted); without --sse it is refused."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 2**20))
    (tmp_path / "aws.cfg").write_text("[default]\ns3 =\n    addressing_style = path\n")
    key = world.keys["alice"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "aws.cfg"),
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1"}
    cp = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", world.root.meta.endpoint_url, "s3", "cp",
          str(big), f"s3://{B}/new/big"]
    world.set_policies("alice", [allow("s3:*")], REQUIRE_SSE)
    try:
        r = subprocess.run([*cp, "--sse", "AES256"], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        head = world.root.head_object(Bucket=B, Key="new/big")
        assert head["ServerSideEncryption"] == "AES256" and head["ETag"].endswith('-2"')
        r = subprocess.run(cp, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode != 0 and "AccessDenied" in r.stderr
    finally:
        world.set_policies("alice", None, None)


def _fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_presigned_url_is_judged_when_used(world: World) -> None:
    """A presigned URL carries no authority of its own: the signer's policies and key as they are
    when the URL is used decide."""
    world.add_user("presigner")
    world.current["presigner"] = None
    c = world.clients["presigner"]
    world.set_policies("presigner", [allow("s3:GetObject", OBJ)], None)
    url = c.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "x"})
    assert _fetch(url) == 200
    world.set_policies("presigner", [allow("s3:GetObject", f"{ARN}/pub/*")], None)  # narrowed after signing
    assert _fetch(url) == 403
    world.set_policies("presigner", [allow("s3:GetObject", OBJ)], None)
    assert _fetch(url) == 200
    key = world.keys["presigner"]["AccessKeyId"]
    world.iam.update_access_key(UserName="presigner", AccessKeyId=key, Status="Inactive")
    assert _fetch(url) == 403
    world.iam.delete_access_key(UserName="presigner", AccessKeyId=key)
    assert _fetch(url) == 403
    assert outcome(lambda: get("x")(c)) == "InvalidAccessKeyId"


@pytest.mark.parametrize(("statements", "status"), [
    ([allow("stowage:GetMetrics")], 200),
    # the global condition keys count for the stowage:* actions of the admin paths as for S3's
    ([allow("stowage:GetMetrics"), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}})], 401),
    ([allow("stowage:GetMetrics"), deny("*", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})], 401),
    ([allow("stowage:GetMetrics", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})], 200),
    ([allow("stowage:GetMetrics", Condition={"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}})], 200),
], ids=["allowed", "deny-plain-http", "deny-source-range", "allow-source-range", "allow-until"])
def test_admin_paths_see_the_request_context(world: World, statements: list[dict[str, Any]], status: int) -> None:
    from tests.operator.helpers import http_get, signed_headers

    if "watcher" not in world.keys:
        world.add_user("watcher")
        world.current["watcher"] = None
    world.set_policies("watcher", statements, None)
    endpoint, key = world.root.meta.endpoint_url, world.keys["watcher"]
    path = "/_stowage/v1/metrics"
    signed = signed_headers(endpoint, path, key["AccessKeyId"], key["SecretAccessKey"])
    assert http_get(endpoint, path, signed)[0] == status
