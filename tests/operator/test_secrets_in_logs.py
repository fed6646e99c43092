"""No secret in any log: after a workload that handles every kind of secret (root and user
secret keys, a metrics token, a presigned URL's signature, an SMTP password, a KMS key), none of
them appears in the daemon's log, the access log, the audit log or a delivered S3 log object.
And the journal handler's fields and the formatters' redaction, on a real datagram socket."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from appliance.journald import Journal
from appliance.logsetup import JournalHandler, redact

from .helpers import http_get


def test_no_secret_in_any_log(daemon_factory: Any, tmp_path: Path) -> None:
    cfg = tmp_path / "stowage.toml"
    cfg.write_text("log_level = \"debug\"\n[access_log]\nenabled = true\ndelivery_interval_seconds = 0.5\n")
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    secrets = [d.secret_key]
    user = json.loads(d.cli("user", "add", "erin", "--policy", "readwrite", "--json").stdout)
    secrets.append(user["secret_key"])
    token = d.cli("metrics-token").stdout.strip()
    secrets.append(token)
    assert http_get(d.endpoint, "/_stowage/v1/metrics", {"Authorization": f"Bearer {token}"})[0] == 200
    d.cli("alerts", "smtp-password", input="pw-never-logged-42\n")
    secrets.append("pw-never-logged-42")
    d.cli("kms", "key", "create", "app-key")
    s3 = d.s3(signature_version="s3v4")
    s3.create_bucket(Bucket="sec")
    s3.create_bucket(Bucket="seclogs")
    s3.put_bucket_logging(Bucket="sec", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "seclogs", "TargetPrefix": ""}})
    s3.put_object(Bucket="sec", Key="k", Body=b"v", SSEKMSKeyId="app-key", ServerSideEncryption="aws:kms")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "sec", "Key": "k"})
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    secrets.append(signature)
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"v"
    bad = url.replace(signature, "0" * len(signature))
    try:
        urllib.request.urlopen(bad)
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not s3.list_objects_v2(Bucket="seclogs").get("Contents"):
        time.sleep(0.1)
    delivered = "".join(s3.get_object(Bucket="seclogs", Key=o["Key"])["Body"].read().decode()
                        for o in s3.list_objects_v2(Bucket="seclogs").get("Contents", []))
    assert delivered
    d.stop()
    logs = {"daemon": Path(d.log_path).read_text(), "delivered": delivered}
    for f in (d.data_dir / "log").iterdir():
        logs[f.name] = f.read_text()
    assert set(logs) >= {"daemon", "delivered", "access.log", "audit.log"}
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret in {name}"


def test_journal_fields_and_redaction(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    try:
        handler = JournalHandler(Journal(path))
        logger = logging.getLogger("stowage.test.journal")
        logger.addHandler(handler)
        logger.propagate = False
        logger.warning("fetched https://x/?X-Amz-Signature=abcdef0123&y=1 secret_key=SEKRIT token: tok123")
        data = server.recv(65536).decode()
    finally:
        server.close()
        logger.removeHandler(handler)
        handler.journal.close()
    fields = dict(line.split("=", 1) for line in data.splitlines())
    assert fields["PRIORITY"] == "4" and fields["SYSLOG_IDENTIFIER"] == "stowage"
    assert fields["STOWAGE_LOGGER"] == "stowage.test.journal" and fields["CODE_FUNC"]
    assert "abcdef0123" not in data and "SEKRIT" not in data and "tok123" not in data
    assert "X-Amz-Signature=[redacted]" in fields["MESSAGE"]
    assert redact('{"password": "p4ss"}') == '{"password": "[redacted]"}'
    assert redact("nothing to hide here") == "nothing to hide here"
