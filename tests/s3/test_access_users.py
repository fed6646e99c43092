"""Access control with IAM users against the real daemon: users with different policies on the
same buckets, a group policy, bucket policies and ACLs naming users, ownership across users,
disabled users and revoked keys, and `aws iam` creating a user whose key is then used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def refused(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    return code(exc)


def client(d: Any, access_key: str, secret_key: str) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: str | list[str], resources: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


class Users:
    """Users made with the `stowage` CLI (through the running daemon)."""

    def __init__(self, d: Any, tmp: Path) -> None:
        self.d = d
        self.tmp = tmp
        self.info: dict[str, dict[str, Any]] = {}

    def cli(self, *args: str) -> dict[str, Any]:
        out = self.d.cli(*args, "--json").stdout
        return json.loads(out) if out.strip() else {}

    def add(self, name: str, *policies: str) -> Any:
        r = self.cli("user", "add", name, *(x for p in policies for x in ("--policy", p)))
        self.info[name] = r
        return client(self.d, r["access_key"], r["secret_key"])

    def policy(self, name: str, document: str) -> None:
        path = self.tmp / f"{name}.json"
        path.write_text(document)
        self.cli("policy", "create", name, str(path))

    def arn(self, name: str) -> str:
        return str(self.info[name]["arn"])


@pytest.fixture(scope="module")
def users(s3d: Any, tmp_path_factory: pytest.TempPathFactory) -> Users:
    return Users(s3d, tmp_path_factory.mktemp("policies"))


@pytest.fixture(scope="module")
def teams(s3: Any) -> tuple[str, str]:
    for b in ("team-a", "team-b"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="team-a", Key="plan.txt", Body=b"a-plan")
    s3.put_object(Bucket="team-b", Key="shared/doc", Body=b"b-doc")
    s3.put_object(Bucket="team-b", Key="private/doc", Body=b"b-secret")
    return "team-a", "team-b"


def test_two_users_with_different_policies_on_the_same_buckets(s3: Any, users: Users,
                                                               teams: tuple[str, str]) -> None:
    a, b = teams
    users.policy("alice-work", policy(
        allow(["s3:ListBucket", "s3:GetBucketLocation"], f"arn:aws:s3:::{a}"),
        allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"arn:aws:s3:::{a}/*"),
        allow("s3:GetObject", f"arn:aws:s3:::{b}/shared/*")))
    alice = users.add("alice", "alice-work")
    bob = users.add("bob", "readonly")

    alice.put_object(Bucket=a, Key="alice.txt", Body=b"by alice")
    assert alice.get_object(Bucket=a, Key="plan.txt")["Body"].read() == b"a-plan"
    assert [o["Key"] for o in alice.list_objects_v2(Bucket=a)["Contents"]] == ["alice.txt", "plan.txt"]
    assert alice.get_object(Bucket=b, Key="shared/doc")["Body"].read() == b"b-doc"
    assert refused(alice.get_object, Bucket=b, Key="private/doc") == "AccessDenied"
    assert refused(alice.put_object, Bucket=b, Key="alice.txt", Body=b"x") == "AccessDenied"
    assert refused(alice.list_objects_v2, Bucket=b) == "AccessDenied"
    assert refused(alice.delete_bucket, Bucket=a) == "AccessDenied"
    assert refused(alice.put_bucket_policy, Bucket=a, Policy=policy(
        {**allow("s3:GetObject", f"arn:aws:s3:::{a}/*"), "Principal": "*"})) == "AccessDenied"
    assert refused(alice.create_bucket, Bucket="alice-own") == "AccessDenied"

    assert bob.get_object(Bucket=a, Key="alice.txt")["Body"].read() == b"by alice"
    assert bob.get_object(Bucket=b, Key="private/doc")["Body"].read() == b"b-secret"
    assert refused(bob.put_object, Bucket=a, Key="bob.txt", Body=b"x") == "AccessDenied"
    assert refused(bob.delete_object, Bucket=a, Key="alice.txt") == "AccessDenied"
    assert refused(bob.put_object_acl, Bucket=a, Key="alice.txt", ACL="public-read") == "AccessDenied"

    # ListBuckets: s3:ListAllMyBuckets lists everything; without it, what the caller may list
    assert {a, b} <= {x["Name"] for x in bob.list_buckets()["Buckets"]}
    assert [x["Name"] for x in alice.list_buckets()["Buckets"]] == [a]
    alice.delete_object(Bucket=a, Key="alice.txt")


def test_group_policy(s3: Any, users: Users, teams: tuple[str, str]) -> None:
    _, b = teams
    users.policy("drop-box", policy(allow("s3:PutObject", f"arn:aws:s3:::{b}/drop/*")))
    users.cli("group", "add", "uploaders")
    users.cli("policy", "attach", "drop-box", "--group", "uploaders")
    carol = users.add("carol")
    assert refused(carol.put_object, Bucket=b, Key="drop/c1", Body=b"x") == "AccessDenied"
    users.cli("group", "members", "uploaders", "--add", "carol")
    carol.put_object(Bucket=b, Key="drop/c1", Body=b"from carol")
    assert refused(carol.put_object, Bucket=b, Key="elsewhere", Body=b"x") == "AccessDenied"
    # she owns what she wrote (ObjectWriter): her own upload is hers to read, the others' are not
    assert carol.get_object(Bucket=b, Key="drop/c1")["Body"].read() == b"from carol"
    s3.put_object(Bucket=b, Key="drop/from-root", Body=b"r")
    assert refused(carol.get_object, Bucket=b, Key="drop/from-root") == "AccessDenied"
    users.cli("group", "members", "uploaders", "--remove", "carol")
    assert refused(carol.put_object, Bucket=b, Key="drop/c2", Body=b"x") == "AccessDenied"
    assert s3.get_object(Bucket=b, Key="drop/c1")["Body"].read() == b"from carol"


def test_bucket_policy_naming_users(s3: Any, users: Users) -> None:
    s3.create_bucket(Bucket="named")
    s3.put_object(Bucket="named", Key="k", Body=b"v")
    frank = users.add("frank")  # no identity policy at all
    gina = users.add("gina")
    reader = users.add("reader", "readonly")
    s3.put_bucket_policy(Bucket="named", Policy=policy(
        {**allow("s3:GetObject", "arn:aws:s3:::named/*"), "Principal": {"AWS": users.arn("frank")}},
        {"Effect": "Deny", "Principal": {"AWS": users.arn("reader")}, "Action": "s3:*",
         "Resource": ["arn:aws:s3:::named", "arn:aws:s3:::named/*"]}))
    assert frank.get_object(Bucket="named", Key="k")["Body"].read() == b"v"
    assert refused(gina.get_object, Bucket="named", Key="k") == "AccessDenied"
    # an explicit Deny in the bucket policy beats the user's own Allow
    assert refused(reader.get_object, Bucket="named", Key="k") == "AccessDenied"
    assert "named" not in [x["Name"] for x in frank.list_buckets()["Buckets"]]
    # a policy variable: each user gets a home prefix
    s3.put_bucket_policy(Bucket="named", Policy=policy({
        **allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::named/home/${aws:username}/*"),
        "Principal": {"AWS": [users.arn("frank"), users.arn("gina")]}}))
    frank.put_object(Bucket="named", Key="home/frank/notes", Body=b"f")
    assert refused(frank.put_object, Bucket="named", Key="home/gina/notes", Body=b"f") == "AccessDenied"
    gina.put_object(Bucket="named", Key="home/gina/notes", Body=b"g")


def test_acl_grants_to_users_and_ownership(s3: Any, users: Users) -> None:
    users.policy("bucket-maker", policy(allow("s3:CreateBucket", "arn:aws:s3:::*")))
    dave = users.add("dave", "bucket-maker")
    erin = users.add("erin")
    hank = users.add("hank")
    erin_id = erin.list_buckets()["Owner"]["ID"]
    hank_id = hank.list_buckets()["Owner"]["ID"]
    assert erin.list_buckets()["Buckets"] == []

    # the creator owns its bucket: everything in it is its own to do, without further policies
    dave.create_bucket(Bucket="daves")
    dave.put_object(Bucket="daves", Key="mine", Body=b"d")
    assert dave.get_object(Bucket="daves", Key="mine")["Body"].read() == b"d"
    assert [x["Name"] for x in dave.list_buckets()["Buckets"]] == ["daves"]
    assert dave.get_bucket_acl(Bucket="daves")["Owner"]["DisplayName"] == "dave"
    assert refused(erin.get_object, Bucket="daves", Key="mine") == "AccessDenied"
    assert refused(dave.get_object, Bucket="team-a", Key="plan.txt") == "AccessDenied"
    # ... and a grant in the object's ACL to erin's canonical id lets her read that object
    dave.put_object_acl(Bucket="daves", Key="mine", GrantRead=f'id="{erin_id}"')
    assert erin.get_object(Bucket="daves", Key="mine")["Body"].read() == b"d"
    assert refused(erin.list_objects_v2, Bucket="daves") == "AccessDenied"
    dave.put_bucket_acl(Bucket="daves", GrantRead=f'id="{erin_id}"', GrantWrite=f'id="{hank_id}"')
    assert [o["Key"] for o in erin.list_objects_v2(Bucket="daves")["Contents"]] == ["mine"]
    assert [x["Name"] for x in erin.list_buckets()["Buckets"]] == ["daves"]

    # ObjectWriter: hank (bucket WRITE) owns what he writes; the bucket owner cannot read it
    # unless hank grants it bucket-owner-full-control
    hank.put_object(Bucket="daves", Key="from-hank", Body=b"h")
    assert hank.get_object_acl(Bucket="daves", Key="from-hank")["Owner"]["DisplayName"] == "hank"
    assert refused(dave.get_object, Bucket="daves", Key="from-hank") == "AccessDenied"
    assert refused(dave.get_object_acl, Bucket="daves", Key="from-hank") == "AccessDenied"
    hank.put_object(Bucket="daves", Key="for-dave", Body=b"h2", ACL="bucket-owner-full-control")
    assert dave.get_object(Bucket="daves", Key="for-dave")["Body"].read() == b"h2"
    dave.delete_object(Bucket="daves", Key="from-hank")  # the bucket owner may delete any key
    # BucketOwnerPreferred: bucket-owner-full-control hands the object to the bucket owner
    dave.put_bucket_ownership_controls(Bucket="daves", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    hank.put_object(Bucket="daves", Key="handed", Body=b"x", ACL="bucket-owner-full-control")
    assert dave.get_object_acl(Bucket="daves", Key="handed")["Owner"]["DisplayName"] == "dave"
    # another user re-creating dave's bucket: BucketAlreadyExists
    assert refused(users.add("ivan", "bucket-maker").create_bucket, Bucket="daves") == "BucketAlreadyExists"


def test_disabled_user_and_revoked_key(users: Users, teams: tuple[str, str]) -> None:
    a, _ = teams
    judy = users.add("judy", "readonly")
    assert judy.get_object(Bucket=a, Key="plan.txt")["Body"].read() == b"a-plan"
    users.cli("user", "disable", "judy")
    assert refused(judy.get_object, Bucket=a, Key="plan.txt") == "AccessDenied"
    users.cli("user", "enable", "judy")
    assert judy.get_object(Bucket=a, Key="plan.txt")["Body"].read() == b"a-plan"
    users.cli("key", "revoke", users.info["judy"]["access_key"])
    assert refused(judy.get_object, Bucket=a, Key="plan.txt") == "InvalidAccessKeyId"


def test_aws_iam_creates_a_user_whose_key_works(s3d: Any, teams: tuple[str, str], tmp_path: Path) -> None:
    from tests.clients.conftest import clean_env, require, run

    a, _ = teams
    env = clean_env(tmp_path, {"AWS_ACCESS_KEY_ID": s3d.access_key, "AWS_SECRET_ACCESS_KEY": s3d.secret_key,
                               "AWS_DEFAULT_REGION": "us-east-1"})
    iam = [require("aws"), "--endpoint-url", s3d.endpoint, "iam", "--output", "json"]
    run([*iam, "create-user", "--user-name", "kate"], env)
    key = json.loads(run([*iam, "create-access-key", "--user-name", "kate"], env).stdout)["AccessKey"]
    doc = tmp_path / "read-a.json"
    doc.write_text(policy(allow(["s3:GetObject", "s3:ListBucket"], [f"arn:aws:s3:::{a}", f"arn:aws:s3:::{a}/*"])))
    arn = json.loads(run([*iam, "create-policy", "--policy-name", "read-a", "--policy-document",
                          f"file://{doc}"], env).stdout)["Policy"]["Arn"]
    kate = client(s3d, key["AccessKeyId"], key["SecretAccessKey"])
    assert refused(kate.get_object, Bucket=a, Key="plan.txt") == "AccessDenied"
    run([*iam, "attach-user-policy", "--user-name", "kate", "--policy-arn", arn], env)
    assert kate.get_object(Bucket=a, Key="plan.txt")["Body"].read() == b"a-plan"
    assert refused(kate.put_object, Bucket=a, Key="kate", Body=b"x") == "AccessDenied"
    run([*iam, "update-access-key", "--user-name", "kate", "--access-key-id", key["AccessKeyId"],
         "--status", "Inactive"], env)
    assert refused(kate.get_object, Bucket=a, Key="plan.txt") == "InvalidAccessKeyId"
