"""HTTPS out of the box (appliance/tls.py): when the gateway serves HTTPS, the generated
certificate and its printed fingerprint, `stowage credentials --env` with AWS_CA_BUNDLE used by a
real boto3, SSE-C over it, and configured certificates reloaded on SIGHUP and on file change
while an open connection keeps working."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from appliance import tls
from appliance.config import Config, S3Config, TlsConfig, embedded_config
from tests.conftest import REPO, DaemonProc
from tests.tlscert import self_signed_cert


def test_when_https_is_the_default(tmp_path: Path) -> None:
    emb = embedded_config(tmp_path / "d")
    assert not tls.tls_wanted(emb)  # the quick start: embedded, loopback
    assert tls.tls_wanted(replace(emb, s3=S3Config(listen="0.0.0.0:9000")))
    assert tls.tls_wanted(replace(emb, s3=S3Config(listen="[::]:9000")))
    assert tls.tls_wanted(replace(emb, s3=S3Config(listen="nas.example.net:9000")))
    assert tls.tls_wanted(replace(emb, tls=TlsConfig(mode="on")))
    installed = Config()  # the installed appliance (a config file), even on loopback
    assert tls.tls_wanted(installed)
    assert not tls.tls_wanted(replace(installed, tls=TlsConfig(mode="off")))
    assert not tls.tls_wanted(replace(emb, s3=S3Config(listen="0.0.0.0:9000"), tls=TlsConfig(mode="off")))


def test_generated_certificate_names_and_renewal(tmp_path: Path) -> None:
    cfg = replace(embedded_config(tmp_path / "d"), tls=TlsConfig(mode="on", names=["nas.example.net", "192.0.2.7"]))
    files = tls.prepare(cfg)
    assert files is not None and files.generated
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert files.cert.parent.stat().st_mode & 0o777 == 0o700
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "nas.example.net"} <= set(san.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1", "192.0.2.7"} <= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    first = files.fingerprint()
    assert len(first.split(":")) == 32
    assert tls.prepare(cfg) is not None and files.fingerprint() == first  # kept across starts
    files.cert.write_text("not a certificate")  # unreadable (or expiring): made again
    assert tls.prepare(cfg) is not None and files.fingerprint() != first


def _https_client(endpoint: str, d: DaemonProc, verify: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=d.access_key,
                        aws_secret_access_key=d.secret_key, region_name="us-east-1", verify=verify,
                        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def test_generated_certificate_served_with_fingerprint_and_ca_bundle(tmp_path: Path) -> None:
    config = tmp_path / "stowage.toml"
    config.write_text('[tls]\nmode = "on"\n')
    d = DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(config)])
    d.start()
    try:
        assert d.endpoint.startswith("https://127.0.0.1:")
        cert = tmp_path / "data" / "tls" / "cert.pem"
        fp = tls.fingerprint(cert.read_bytes())
        assert f"SHA-256 fingerprint: {fp}" in d.log_tail(200)
        assert d.info["tls_fingerprint"] == fp
        host, port = d.endpoint.removeprefix("https://").split(":")
        served = ssl.get_server_certificate((host, int(port)))
        assert tls.fingerprint(served.encode()) == fp

        # `eval "$(stowage credentials --env)"` and a client that is told nothing else
        out = d.cli("credentials", "--env").stdout
        env = {}
        for line in out.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.strip("'")
        assert env["AWS_CA_BUNDLE"] == str(cert) and env["AWS_ENDPOINT_URL"] == d.endpoint
        script = ("import boto3; s3 = boto3.client('s3'); s3.create_bucket(Bucket='viaenv'); "
                  "s3.put_object(Bucket='viaenv', Key='k', Body=b'over https'); "
                  "print(s3.get_object(Bucket='viaenv', Key='k')['Body'].read().decode())")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        r = subprocess.run([sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True,
                           cwd=REPO, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "over https"

        # SSE-C needs TLS: it works over the generated certificate
        s3 = _https_client(d.endpoint, d, str(cert))
        key = os.urandom(32)
        s3.put_object(Bucket="viaenv", Key="ssec", Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
        got = s3.get_object(Bucket="viaenv", Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
        assert got["Body"].read() == b"secret"
        assert got["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()

        d.restart()  # the same certificate on the next start
        assert d.info["tls_fingerprint"] == fp
    finally:
        d.stop()


def _served_fingerprint(endpoint: str) -> str:
    host, port = endpoint.removeprefix("https://").split(":")
    return tls.fingerprint(ssl.get_server_certificate((host, int(port))).encode())


def _wait_for_fingerprint(endpoint: str, want: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while _served_fingerprint(endpoint) != want:
        assert time.monotonic() < end, "the new certificate was not served"
        time.sleep(0.05)


def test_configured_certificate_reloaded_on_sighup_and_on_change(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    cert, key = self_signed_cert(live)
    config = tmp_path / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\n[tls]\nreload_interval = 3600.0\n')
    d = DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(config)])
    d.start()
    try:
        assert d.proc is not None
        first = tls.fingerprint(cert.read_bytes())
        assert _served_fingerprint(d.endpoint) == first
        # a client trusting only the first certificate: a new connection after the reload would
        # fail verification, so its second call shows the kept-alive connection survived
        s3 = _https_client(d.endpoint, d, str(live / "first.pem"))
        shutil.copy(cert, live / "first.pem")
        s3.create_bucket(Bucket="before")

        nxt = tmp_path / "next"
        nxt.mkdir()
        self_signed_cert(nxt)
        shutil.copy(nxt / "key.pem", key)
        shutil.copy(nxt / "cert.pem", cert)
        second = tls.fingerprint(cert.read_bytes())
        # reload_interval is an hour: only the signal can make this one
        d.proc.send_signal(signal.SIGHUP)
        _wait_for_fingerprint(d.endpoint, second)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["before"]
        assert d.proc.poll() is None
        assert "reloaded" in d.log_tail(200)
    finally:
        d.stop()


def test_configured_certificate_reloaded_on_file_change(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    cert, key = self_signed_cert(live)
    config = tmp_path / "stowage.toml"
    config.write_text(f'[s3]\ntls_cert = "{cert}"\ntls_key = "{key}"\n[tls]\nreload_interval = 0.2\n')
    d = DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(config)])
    d.start()
    try:
        # a half-written pair (new key, old certificate) is refused and the old one kept
        nxt = tmp_path / "next"
        nxt.mkdir()
        self_signed_cert(nxt)
        first = tls.fingerprint(cert.read_bytes())
        shutil.copy(nxt / "key.pem", key)
        end = time.monotonic() + 30
        while "not reloaded" not in d.log_tail(200):
            assert time.monotonic() < end
            time.sleep(0.05)
        assert _served_fingerprint(d.endpoint) == first
        shutil.copy(nxt / "cert.pem", cert)
        _wait_for_fingerprint(d.endpoint, tls.fingerprint(cert.read_bytes()))
    finally:
        d.stop()


@pytest.mark.parametrize("mode", ["sometimes", ""])
def test_bad_tls_mode_refused(tmp_path: Path, mode: str) -> None:
    config = tmp_path / "stowage.toml"
    config.write_text(f'[tls]\nmode = "{mode}"\n')
    r = subprocess.run([sys.executable, "-m", "appliance", "credentials", "--config", str(config),
                        "--data", str(tmp_path / "d")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 78 and "tls.mode" in r.stderr
