"""Site replication between two real daemons that share a master key (one pair for the module):
identities, policies and bucket configurations made on one box arrive on the other, objects
replicate both ways, concurrent edits are resolved by the hybrid logical clock and reported, and
a queued change survives kill -9 and recover-metadata."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import DaemonProc
from tests.events.receiver import poll

READ_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetObject", "s3:ListBucket"], "Resource": "*"}]})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProc, DaemonProc]]:
    root = tmp_path_factory.mktemp("site")
    a = DaemonProc(root / "a", ["--no-mount"]).start()
    b = DaemonProc(root / "b", ["--no-mount"])
    (b.data_dir / "keys").mkdir(parents=True, mode=0o700)
    shutil.copy2(a.data_dir / "keys" / "master.key", b.data_dir / "keys" / "master.key")  # one master key
    b.start()
    try:
        yield a, b
    finally:
        for d in (a, b):
            try:
                d.stop(timeout=30)
            except Exception:
                d.kill()


def client(d: DaemonProc, ak: str, sk: str) -> Any:
    return boto3.client("s3", endpoint_url=d.endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=BotoConfig(s3={"addressing_style": "path"},
                                                                   retries={"max_attempts": 1}))


def status(d: DaemonProc) -> dict[str, Any]:
    return json.loads(d.cli("site", "status", "--json").stdout)  # type: ignore[no-any-return]


def test_join_then_users_policies_and_buckets_follow(site: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = site
    sa, sb = a.s3(), b.s3()
    sa.create_bucket(Bucket="before")  # made before the join: the state transfer carries it
    sa.put_bucket_versioning(Bucket="before", VersioningConfiguration={"Status": "Enabled"})
    sa.create_bucket(Bucket="unversioned")  # the join enables its versioning
    sa.put_object(Bucket="before", Key="early", Body=b"early")  # replicated by a resync
    bad = a.cli("site", "add", b.endpoint, "--access-key", b.access_key, "--secret-key", "wrong",
                "--self-url", a.endpoint, check=False)
    assert bad.returncode != 0 and "403" in bad.stderr + bad.stdout
    joined = json.loads(a.cli("site", "add", b.endpoint, "--access-key", b.access_key, "--secret-key",
                              b.secret_key, "--self-url", a.endpoint, "--json").stdout)
    name_a, name_b = status(a)["name"], status(b)["name"]
    assert joined["name"] == name_b
    assert [p["name"] for p in json.loads(a.cli("site", "list", "--json").stdout)] == [name_b]
    assert [p["name"] for p in json.loads(b.cli("site", "list", "--json").stdout)] == [name_a]
    poll(lambda: "before" in [x["Name"] for x in sb.list_buckets()["Buckets"]])
    assert sa.get_bucket_versioning(Bucket="unversioned").get("Status") == "Enabled"
    poll(lambda: sb.get_bucket_versioning(Bucket="unversioned").get("Status") == "Enabled")

    # a managed policy and a user with a key, made on A, work on B
    policy = a.data_dir.parent / "readall.json"
    policy.write_text(READ_ALL)
    a.cli("policy", "create", "readall", str(policy))
    alice = json.loads(a.cli("user", "add", "alice", "--policy", "readall", "--json").stdout)
    sa.create_bucket(Bucket="photos")  # in a site, a new bucket is versioned (as MinIO does)
    assert sa.get_bucket_versioning(Bucket="photos").get("Status") == "Enabled"
    lifecycle = {"Rules": [{"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                            "Expiration": {"Days": 7}}]}
    sa.put_bucket_lifecycle_configuration(Bucket="photos", LifecycleConfiguration=lifecycle)
    alice_b = client(b, alice["access_key"], alice["secret_key"])

    def alice_lists_on_b() -> bool:
        try:
            return "photos" in [x["Name"] for x in alice_b.list_buckets()["Buckets"]]
        except ClientError:
            return False

    poll(alice_lists_on_b, what=lambda: b.log_tail(20))
    assert "readall" in b.cli("policy", "list").stdout
    with pytest.raises(ClientError):  # the policy came with the user: reading only
        alice_b.create_bucket(Bucket="not-alice")
    poll(lambda: sb.get_bucket_versioning(Bucket="photos").get("Status") == "Enabled")
    poll(lambda: _lifecycle(sb) == lifecycle["Rules"][0]["ID"])
    # a bucket policy and a KMS key (its material wrapped by the shared master key) follow too
    public = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                                 "Action": "s3:GetObject",
                                                                 "Resource": "arn:aws:s3:::photos/pub/*"}]})
    sa.put_bucket_policy(Bucket="photos", Policy=public)
    a.cli("kms", "key", "create", "sitekey")
    poll(lambda: "sitekey" in b.cli("kms", "key", "list").stdout)
    assert json.loads(sb.get_bucket_policy(Bucket="photos")["Policy"]) == json.loads(public)


def _lifecycle(s3: Any) -> str:
    try:
        return str(s3.get_bucket_lifecycle_configuration(Bucket="photos")["Rules"][0]["ID"])
    except ClientError:
        return ""


def test_objects_replicate_both_ways(site: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = site
    sa, sb = a.s3(), b.s3()
    poll(lambda: sb.get_bucket_versioning(Bucket="photos").get("Status") == "Enabled")
    vb = sb.put_object(Bucket="photos", Key="from-b", Body=b"B" * 100)["VersionId"]
    va = sa.put_object(Bucket="photos", Key="from-a", Body=b"A" * 100)["VersionId"]

    def has(s3: Any, key: str, vid: str) -> bool:
        try:
            return s3.head_object(Bucket="photos", Key=key, VersionId=vid)["ReplicationStatus"] == "REPLICA"
        except ClientError:
            return False

    poll(lambda: has(sa, "from-b", vb))
    poll(lambda: has(sb, "from-a", va))
    assert sa.get_object(Bucket="photos", Key="from-b")["Body"].read() == b"B" * 100
    assert sb.head_object(Bucket="photos", Key="from-b", VersionId=vb)["ReplicationStatus"] == "COMPLETED"
    # an object older than the join: `stowage replication resync` sends it to the peers too
    assert json.loads(a.cli("replication", "resync", "before", "--json").stdout)["queued"] == 1
    poll(lambda: [o["Key"] for o in sb.list_objects_v2(Bucket="before").get("Contents", [])] == ["early"])
    # a suspended bucket would stop replicating its new objects: refused while the site replicates it
    with pytest.raises(ClientError) as err:
        sa.put_bucket_versioning(Bucket="photos", VersioningConfiguration={"Status": "Suspended"})
    assert err.value.response["Error"]["Code"] == "InvalidBucketState"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert sa.get_bucket_versioning(Bucket="photos")["Status"] == "Enabled"


def test_concurrent_edits_and_a_queue_that_survives_kill_and_recovery(site: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = site
    b_listen = b.endpoint.removeprefix("http://")
    b.stop()
    while b.start().endpoint.endswith(b_listen):  # B comes back elsewhere: A cannot reach it for a while
        b.stop()
    b.extra_args += ["--listen", b_listen]
    sa = a.s3()
    sa.put_bucket_tagging(Bucket="photos", Tagging={"TagSet": [{"Key": "side", "Value": "a"}]})
    a.cli("user", "add", "carol", "--no-key")
    poll(lambda: status(a)["peers"][0]["retrying"])
    assert status(a)["peers"][0]["queued"] >= 2

    a.kill()  # -9 with the changes queued, then the metadata DB rebuilt from the journal
    shutil.rmtree(a.data_dir / "meta")
    report = json.loads(a.cli("recover-metadata", "--json").stdout)
    assert report["journal"]["complete"], report
    a.extra_args += ["--listen", a.endpoint.removeprefix("http://")]
    a.start()
    assert status(a)["peers"][0]["queued"] >= 2

    # B edits the same bucket's tags without having seen A's edit: a conflict, the later wins
    sb = b.s3()
    sb.put_bucket_tagging(Bucket="photos", Tagging={"TagSet": [{"Key": "side", "Value": "b"}]})
    sa = a.s3()
    poll(lambda: sa.get_bucket_tagging(Bucket="photos")["TagSet"] == [{"Key": "side", "Value": "b"}])
    conflicts = status(a)["conflicts"]
    assert [c["key"] for c in conflicts] == ["Bphotos"] and conflicts[0]["winner"] == status(b)["name"]

    b.stop()
    b.start()  # where A's queue points again
    sb = b.s3()
    poll(lambda: "carol" in b.cli("user", "list").stdout, what=lambda: json.dumps(status(a)))
    poll(lambda: status(a)["peers"][0]["queued"] == 0)
    assert sb.get_bucket_tagging(Bucket="photos")["TagSet"] == [{"Key": "side", "Value": "b"}]
    assert [c["key"] for c in status(b)["conflicts"]] == ["Bphotos"]
    assert "conflicts (the last writer won)" in b.cli("site", "status").stdout


def test_the_site_endpoint_wants_a_signed_body_of_an_allowed_principal(site: tuple[DaemonProc, DaemonProc]) -> None:
    a, _ = site
    url = a.endpoint + "/_stowage/v1/site/changes"
    body = json.dumps({"origin": "nobody", "changes": []}).encode()
    assert urllib3.request("POST", url, body=body).status == 403  # unsigned
    alice = json.loads(a.cli("user", "add", "mallory", "--json").stdout)  # no policy: not allowed
    assert _signed(url, body, body, alice["access_key"], alice["secret_key"]).status == 403
    assert _signed(url, body, body + b" ", a.access_key, a.secret_key).status == 400  # not the signed body
    r = _signed(url, body, body, a.access_key, a.secret_key)
    assert r.status == 409 and b"not a peer" in r.data
    assert urllib3.request("GET", url).status == 405


def _signed(url: str, signed: bytes, sent: bytes, ak: str, sk: str) -> urllib3.BaseHTTPResponse:
    req = AWSRequest(method="POST", url=url, data=signed, headers={"Content-Type": "application/json"})
    S3SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
    return urllib3.request("POST", url, body=sent, headers=dict(req.headers.items()))


def test_a_rule_without_its_target_is_a_problem_and_remove_tells_the_peer(
        site: tuple[DaemonProc, DaemonProc]) -> None:
    a, b = site
    sa = a.s3()
    a.cli("replication", "target", "add", "ext", "--endpoint", b.endpoint, "--access-key", b.access_key,
          "--secret-key", b.secret_key, "--kind", "s3")
    sa.create_bucket(Bucket="ruled")
    sa.put_bucket_replication(Bucket="ruled", ReplicationConfiguration={"Role": "", "Rules": [{
        "ID": "r1", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": "arn:stowage:s3::ext:copy"}}]})
    # targets are per box: the rule arrives on B, which has no target "ext", and says so
    want = [{"bucket": "ruled", "kind": "replication", "rule": "r1", "target": "ext"}]
    poll(lambda: status(b)["missing_targets"] == want, what=lambda: json.dumps(status(b)))
    assert status(a)["missing_targets"] == []
    assert "target 'ext'" in b.cli("site", "status").stdout

    name_b = status(b)["name"]
    out = a.cli("site", "remove", name_b)
    assert f"removed {name_b}" in out.stdout and "could not be told" not in out.stderr
    assert json.loads(b.cli("site", "list", "--json").stdout) == []  # B was told: it stopped too
    assert json.loads(a.cli("site", "list", "--json").stdout) == []


def test_a_third_box_joins_every_box_of_the_site(site: tuple[DaemonProc, DaemonProc], tmp_path: Any) -> None:
    a, b = site
    c = DaemonProc(tmp_path / "c", ["--no-mount"])
    (c.data_dir / "keys").mkdir(parents=True, mode=0o700)
    shutil.copy2(a.data_dir / "keys" / "master.key", c.data_dir / "keys" / "master.key")
    c.start()
    try:
        b.cli("site", "add", a.endpoint, "--access-key", a.access_key, "--secret-key", a.secret_key,
              "--self-url", b.endpoint)
        names = {d.endpoint: status(d)["name"] for d in (a, b, c)}
        joined = json.loads(a.cli("site", "add", c.endpoint, "--access-key", c.access_key, "--secret-key",
                                  c.secret_key, "--self-url", a.endpoint, "--json").stdout)
        # A asked C to join B with the key A holds for B: every pair is joined
        assert joined["introduced"] == [names[b.endpoint]] and joined["not_introduced"] == {}
        for d in (a, b, c):
            peers = {p["name"] for p in json.loads(d.cli("site", "list", "--json").stdout)}
            assert peers == set(names.values()) - {names[d.endpoint]}, d.endpoint
        b.s3().create_bucket(Bucket="from-b")  # B's changes reach C directly
        poll(lambda: "from-b" in [x["Name"] for x in c.s3().list_buckets()["Buckets"]])
    finally:
        c.stop(timeout=30)
