"""The console's HTTP side against the real daemon, with `requests`: the page and its headers,
login and sessions (cookie flags, the request token, expiry by revocation, logout), S3 and IAM
calls performed as the logged-in user through the same authorization as signed requests,
presigned links, the disks view, and hostile input."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.conftest import DaemonProc

from .conftest import TOKEN, ConsoleClient, add_user, console_url


def test_the_page_and_its_security_headers(cd: DaemonProc) -> None:
    r = requests.get(cd.endpoint + "/_stowage/v1/console", allow_redirects=False, timeout=30)
    assert r.status_code == 308 and r.headers["Location"] == "/_stowage/v1/console/"
    r = requests.get(console_url(cd), timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" in r.text and "static/app.js" in r.text and "http" not in r.text.split("<body>")[0]  # no CDN
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = requests.get(console_url(cd) + "static/" + name, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
    for bad in ("static/../handler.py", "static/%2e%2e/handler.py", "static/nope.js", "nothing"):
        assert requests.get(console_url(cd) + bad, timeout=30).status_code == 404
    assert requests.get(cd.endpoint + "/_stowage/v1/nothing", timeout=30).status_code == 404


def test_login_and_session(cd: DaemonProc) -> None:
    c = ConsoleClient(cd, cd.access_key, cd.secret_key)
    cookie = c.login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/_stowage/v1/console/" in cookie
    assert "Max-Age=" in cookie and "Secure" not in cookie  # Secure only under TLS
    assert c.login.json()["arn"].endswith(":root") and c.token
    assert c("GET", "session").json()["kind"] == "root"
    # the cookie alone is not enough (CSRF, other pages of this origin), nor the token alone
    assert c.http.get(c.base + "session", timeout=30).status_code == 401
    assert c.http.get(c.base + "s3/", timeout=30).status_code == 401
    assert c.http.put(c.base + "s3/csrf-bucket", timeout=30).status_code == 401
    assert requests.get(c.base + "session", headers={TOKEN: c.token}, timeout=30).status_code == 401
    assert c("GET", "session", headers={TOKEN: c.token + "x"}).status_code == 401
    # logout ends it
    r = c("POST", "logout")
    assert r.status_code == 200 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert c("GET", "session").status_code == 401


@pytest.mark.parametrize("body", [
    {"access_key": "AKIDNOPE", "secret_key": "x"}, {"access_key": "", "secret_key": ""}, {"access_key": 5},
    [], "null", "{" * 5000, "not json", "x" * 20_000,
])
def test_bad_logins(cd: DaemonProc, body: Any) -> None:
    url = console_url(cd) + "api/login"
    data = body if isinstance(body, str) else json.dumps(body)
    r = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code in (400, 401) and "Set-Cookie" not in r.headers, r.text
    if r.status_code == 401:
        assert r.json()["error"] == "InvalidCredentials"


def test_wrong_secret(cd: DaemonProc) -> None:
    r = requests.post(console_url(cd) + "api/login", json={"access_key": cd.access_key, "secret_key": "wrong"},
                      timeout=30)
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert requests.get(console_url(cd) + "api/login", timeout=30).status_code == 405


def test_s3_and_iam_as_the_logged_in_user(cd: DaemonProc, root: ConsoleClient) -> None:
    assert root("PUT", "s3/console-api").status_code == 200
    r = root("PUT", "s3/console-api/dir/hello.txt", data=b"hello", headers={"Content-Type": "text/plain",
                                                                            "x-amz-meta-colour": "red"})
    assert r.status_code == 200 and r.headers["ETag"]
    r = root("GET", "s3/console-api?list-type=2&delimiter=/")
    assert r.status_code == 200 and "<Prefix>dir/</Prefix>" in r.text
    assert root("GET", "s3/console-api/dir/hello.txt").content == b"hello"
    assert root("HEAD", "s3/console-api/dir/hello.txt").headers["x-amz-meta-colour"] == "red"
    assert root("GET", "s3/").status_code == 200  # ListBuckets

    # a user who may only read one bucket: reads it, and is refused everything else, by the authorizer
    ak, sk = add_user(cd, "console-reader")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                         "Action": ["s3:GetObject", "s3:ListBucket"],
                         "Resource": ["arn:aws:s3:::console-api", "arn:aws:s3:::console-api/*"]}]})
    r = root.iam("CreatePolicy", PolicyName="console-read", PolicyDocument=policy)
    assert r.status_code == 200, r.text
    arn = r.text.split("<Arn>")[1].split("</Arn>")[0]
    assert root.iam("AttachUserPolicy", UserName="console-reader", PolicyArn=arn).status_code == 200
    reader = ConsoleClient(cd, ak, sk)
    assert reader("GET", "s3/console-api/dir/hello.txt").content == b"hello"
    for method, path in (("PUT", "s3/console-api/x"), ("DELETE", "s3/console-api/dir/hello.txt"),
                         ("PUT", "s3/reader-bucket"), ("GET", "s3/console-api?versioning")):
        r = reader(method, path, data=b"x" if method == "PUT" else None)
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, (method, path, r.text)
    assert reader.iam("ListUsers").status_code == 403
    assert reader("GET", "disks").status_code == 403
    # revoking the key ends its console sessions at once
    cd.cli("key", "revoke", ak)
    assert reader("GET", "session").status_code == 401
    assert reader("GET", "s3/console-api/dir/hello.txt").status_code == 401


def test_presigned_links(cd: DaemonProc, root: ConsoleClient) -> None:
    root("PUT", "s3/console-links")
    root("PUT", "s3/console-links/a b/ü.txt", data=b"shared")
    r = root("POST", "presign", json={"bucket": "console-links", "key": "a b/ü.txt", "expires": 600})
    url = r.json()["url"]
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    got = requests.get(url, timeout=30)  # no cookie, no token: the link alone
    assert got.status_code == 200 and got.content == b"shared"
    r = root("POST", "presign", json={"bucket": "console-links", "key": "a b/ü.txt", "download": True})
    got = requests.get(r.json()["url"], timeout=30)
    assert got.content == b"shared" and got.headers["Content-Disposition"].startswith("attachment")
    for bad in ({"bucket": "console-links"}, {"bucket": 1, "key": "k"}, {"bucket": "b", "key": "k", "expires": -1}):
        assert root("POST", "presign", json=bad).status_code == 400


def test_disks(cd: DaemonProc, root: ConsoleClient) -> None:
    d = root("GET", "disks").json()
    assert d["disks"] and all(x["state"] == "ok" for x in d["disks"])
    assert d["capacity"]["usable_total"] > 0 and d["heal_backlog"] == 0
    assert {"disk_id", "pool", "free_bytes", "total_bytes", "io_errors", "latency_p99_ms"} <= d["disks"][0].keys()


def _audit(d: DaemonProc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (d.data_dir / "log" / "audit.log").read_text().splitlines()]


def test_appliance_pages(cd: DaemonProc, root: ConsoleClient) -> None:
    """Disks in detail, a disk action (audited as the console's user), the durability estimate,
    the version and the charts' history; refused to a user without the stowage:* permissions."""
    from appliance import __version__

    d = root("GET", "disks").json()
    assert all({"shards", "smart", "drain"} <= x.keys() for x in d["disks"])
    assert {"heal", "scrub", "drain"} <= d["services"].keys()
    v = root("GET", "version").json()
    assert v["version"] == __version__ and v["current"] is True and v["formats"]["metadata DB"] >= 1
    est = root("GET", "durability").json()
    assert est["pools"] and est["pools"][0]["disks"] == len(d["disks"]) and 0 <= est["annual_loss"] < 1
    root("GET", "s3/")  # one S3 request at least, for the request counter
    h = root("GET", "history").json()
    assert h["samples"] and {"time", "usable_total", "usable_used", "requests"} <= h["samples"][-1].keys()
    assert h["samples"][-1]["requests"] > 0

    r = root("POST", "disks/action", json={"action": "check"})
    assert r.status_code == 200 and r.json()["done"] is True, r.text
    entry = _audit(cd)[-1]
    assert entry["source"] == "console" and entry["action"] == "disks.check" and entry["who"].endswith(":root")
    assert entry["from"].startswith("127.0.0.1:") and entry["outcome"] == "ok"
    assert set(entry["before"]["disks"]) == {x["disk_id"] for x in d["disks"]} == set(entry["after"]["disks"])
    r = root("POST", "disks/action", json={"action": "scrub"})
    assert r.status_code == 200 and "running" in r.json()["result"]
    for bad, code in (({"action": "format-everything"}, 400), ({"action": ["check"]}, 400), ({"action": "drain"}, 400),
                      ({"action": "drain", "disk": "no-such-disk"}, 400), ({"action": "replace", "disk": "x"}, 400)):
        assert root("POST", "disks/action", json=bad).status_code == code, bad
    assert root("POST", "disks/action", data=b"{not json", headers={"Content-Type": "application/json"}
                ).status_code == 400
    assert root("GET", "disks/action").status_code == 405

    # allowed to look, not to act; and a user with no stowage:* permission at all
    ak, sk = add_user(cd, "console-looker")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "stowage:GetDiskStatus"], "Resource": "*"}]})
    arn = root.iam("CreatePolicy", PolicyName="disk-looker", PolicyDocument=policy).text.split("<Arn>")[1].split("<")[0]
    assert root.iam("AttachUserPolicy", UserName="console-looker", PolicyArn=arn).status_code == 200
    created, attached = [e for e in _audit(cd) if e["action"] in ("iam:CreatePolicy", "iam:AttachUserPolicy")][-2:]
    assert created["source"] == attached["source"] == "console" and created["who"].endswith(":root")
    assert created["before"] == {"policy/disk-looker": None} and created["after"]["state"]["policy/disk-looker"]
    assert attached["before"]["user/console-looker"]["policies"] == []
    assert attached["after"]["state"]["user/console-looker"]["policies"] == ["disk-looker"]
    looker = ConsoleClient(cd, ak, sk)
    assert looker("GET", "disks").status_code == 200 and looker("GET", "version").status_code == 200
    r = looker("POST", "disks/action", json={"action": "check"})
    assert r.status_code == 403 and "stowage:ManageDisks" in r.json()["message"]
    assert looker("GET", "history").status_code == 403
    nobody = ConsoleClient(cd, *add_user(cd, "console-nobody"))
    for path in ("disks", "durability", "version", "history"):
        r = nobody("GET", path)
        assert r.status_code == 403 and r.json()["error"] == "AccessDenied", path
    assert nobody("POST", "disks/action", json={"action": "scrub"}).status_code == 403


def test_console_actions_see_the_request_context(cd: DaemonProc, root: ConsoleClient) -> None:
    """stowage:* actions are judged with aws:SourceIp, aws:SecureTransport and the time, as S3's
    are: a Deny of plain HTTP binds the console too."""
    looker = ConsoleClient(cd, *add_user(cd, "console-plain-http"))
    statements = [{"Effect": "Allow", "Action": "stowage:GetDiskStatus", "Resource": "*",
                   "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]

    def put(extra: list[dict[str, Any]]) -> None:
        doc = json.dumps({"Version": "2012-10-17", "Statement": statements + extra})
        assert root.iam("PutUserPolicy", UserName="console-plain-http", PolicyName="p",
                        PolicyDocument=doc).status_code == 200

    put([])
    assert looker("GET", "version").status_code == 200
    put([{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])
    assert looker("GET", "version").status_code == 403


def test_same_data_through_boto3(cd: DaemonProc, root: ConsoleClient) -> None:
    root("PUT", "s3/console-boto")
    root("PUT", "s3/console-boto/k", data=b"\x00\x01" * 1000)
    s3 = boto3.client("s3", endpoint_url=cd.endpoint, aws_access_key_id=cd.access_key,
                      aws_secret_access_key=cd.secret_key, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    assert s3.get_object(Bucket="console-boto", Key="k")["Body"].read() == b"\x00\x01" * 1000


def test_secure_cookie_under_tls(daemon_factory: Any, tmp_path: Any) -> None:
    from tests.tlscert import self_signed_cert

    cert, key = self_signed_cert(tmp_path)
    config = tmp_path / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    d = daemon_factory(["--no-mount", "--config", str(config)])
    r = requests.post(console_url(d) + "api/login", json={"access_key": d.access_key, "secret_key": d.secret_key},
                      verify=str(cert), timeout=30)
    assert r.status_code == 200 and "; Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    url = requests.post(console_url(d) + "api/presign", json={"bucket": "b", "key": "k"}, cookies=r.cookies,
                        headers={TOKEN: r.json()["token"]}, verify=str(cert), timeout=30).json()["url"]
    assert url.startswith("https://")
