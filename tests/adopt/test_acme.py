"""[tls] mode = "acme" against a real ACME server: Debian's `pebble` (Let's Encrypt's test CA),
with real HTTP-01 validation (no PEBBLE_VA_ALWAYS_VALID: pebble's VA fetches the token from the
daemon's challenge port). The daemon starts on a self-signed placeholder, gets the certificate,
serves it (a client trusting only pebble's root connects by name), keeps its account key wrapped,
and renews (renew_days beyond the certificate's life makes every check order a new one)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from cryptography import x509

from appliance import acmecert, tls
from appliance.cli.tls_cmd import describe
from appliance.config import AcmeConfig, ConfigError, TlsConfig, embedded_config, validate
from tests.conftest import DaemonProc

PEBBLE = shutil.which("pebble")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pebble:
    directory: str
    management: str
    ca_bundle: Path  # trusts pebble's own HTTPS listener
    http_port: int  # where its VA fetches HTTP-01 tokens
    log: Path

    def root(self) -> str:
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"{self.management}/roots/0", context=ctx, timeout=10) as r:
            return r.read().decode()  # type: ignore[no-any-return]


@pytest.fixture
def pebble(tmp_path: Path) -> Iterator[Pebble]:
    if PEBBLE is None:
        pytest.skip("pebble is not installed (make setup-test installs Debian's pebble)")
    d = tmp_path / "pebble"
    d.mkdir()
    tls.generate(d / "cert.pem", d / "key.pem", ["localhost"], [ipaddress.ip_address("127.0.0.1")])
    listen, manage, http_port, tls_port = (_free_port() for _ in range(4))
    (d / "config.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{listen}", "managementListenAddress": f"127.0.0.1:{manage}",
        "certificate": str(d / "cert.pem"), "privateKey": str(d / "key.pem"),
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")} | {"PEBBLE_VA_NOSLEEP": "1"}
    with open(d / "pebble.log", "wb") as log:
        proc = subprocess.Popen([PEBBLE, "-config", str(d / "config.json")], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < end, (d / "pebble.log").read_text()
                time.sleep(0.05)
        yield Pebble(f"https://127.0.0.1:{listen}/dir", f"https://127.0.0.1:{manage}", d / "cert.pem", http_port,
                     d / "pebble.log")
    finally:
        proc.terminate()
        proc.wait(10)


def _served(port: int) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", port)).encode())


def _wait(what: str, cond: Any, d: DaemonProc, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not cond():
        assert time.monotonic() < end, f"{what}:\n{d.log_tail(40)}"
        time.sleep(0.1)


def test_certificate_from_pebble_by_http01(tmp_path: Path, pebble: Pebble) -> None:
    config = tmp_path / "stowage.toml"
    config.write_text(f'[tls]\nmode = "acme"\n[acme]\ndirectory = "{pebble.directory}"\nnames = ["localhost"]\n'
                      f'email = "ops@example.org"\nhttp_listen = "127.0.0.1:{pebble.http_port}"\n'
                      f'ca_bundle = "{pebble.ca_bundle}"\nrenew_days = 100000\ncheck_interval = 1.0\n')
    d = DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(config)])
    d.start()
    try:
        port = int(d.endpoint.rsplit(":", 1)[1])
        files = acmecert.files_of(embedded_config(d.data_dir))
        _wait("the certificate was not issued", lambda: _served(port).issuer != _served(port).subject, d)
        first = _served(port)
        assert "ACME: certificate issued for localhost" in d.log_tail(200)
        assert x509.load_pem_x509_certificates(files.cert.read_bytes())[0] == first
        san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]

        validated = pebble.log.read_text()  # real HTTP-01: pebble's VA fetched the token from the daemon
        assert "Attempting to validate w/ HTTP: http://localhost:" in validated
        assert "set VALID by completed challenge" in validated
        # a client that trusts only pebble's root reaches the gateway by name
        root = tmp_path / "pebble-root.pem"
        root.write_text(pebble.root())
        s3 = boto3.client("s3", endpoint_url=f"https://localhost:{port}", aws_access_key_id=d.access_key,
                          aws_secret_access_key=d.secret_key, region_name="us-east-1", verify=str(root),
                          config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="acme")
        assert s3.list_buckets()["Buckets"][0]["Name"] == "acme"

        # private files; the account key is wrapped by the master key, not a PEM on disk
        for p in (files.cert, files.key, files.account_key, files.account):
            assert p.stat().st_mode & 0o777 == 0o600, p
        assert files.dir.stat().st_mode & 0o777 == 0o700
        assert b"PRIVATE KEY" not in files.account_key.read_bytes()
        assert json.loads(files.account.read_text())["uri"].startswith("https://127.0.0.1:")

        shown = json.loads(d.cli("tls", "show", "--json", "--config", str(config)).stdout)
        assert shown["source"] == "acme" and not shown["self_signed"] and shown["names"] == ["localhost"]
        assert "ends in" in shown["acme"]["due"]  # renew_days is beyond its life

        # renewal: every check finds the certificate due and a new one replaces it
        _wait("the certificate was not renewed", lambda: _served(port).serial_number != first.serial_number, d)
        assert d.proc is not None and d.proc.poll() is None
    finally:
        d.stop()


def test_due_and_the_config(tmp_path: Path) -> None:
    names = ["nas.example.org"]
    cert = tmp_path / "cert.pem"
    assert acmecert.due(cert, names, 30) == "no readable certificate"
    tls.generate(cert, tmp_path / "key.pem", names, [])
    assert acmecert.due(cert, names, 30) == "the self-signed placeholder is in use"

    emb = embedded_config(tmp_path / "d")
    acme = replace(emb, tls=TlsConfig(mode="acme"), acme=AcmeConfig(names=names))
    assert tls.tls_wanted(acme) and validate(acme) is acme
    files = tls.prepare(acme)
    assert files is not None and files.cert == tmp_path / "d" / "tls" / "acme" / "cert.pem"
    assert tls.ca_bundle(acme) == files.cert  # the placeholder needs a bundle; the CA's certificate will not
    shown = describe(acme)
    assert shown["self_signed"] and shown["acme"]["due"] == "the self-signed placeholder is in use"
    assert describe(emb) == {"mode": "auto", "https": False}  # the quick start
    for bad in (AcmeConfig(), AcmeConfig(names=names, directory="http://ca.example/dir"),
                AcmeConfig(names=names, http_listen="nowhere"), AcmeConfig(names=names, renew_days=0)):
        with pytest.raises(ConfigError):
            validate(replace(emb, tls=TlsConfig(mode="acme"), acme=bad))


async def _exchange(port: int, request: bytes) -> bytes:
    import trio

    stream = await trio.open_tcp_stream("127.0.0.1", port)
    out = b""
    async with stream:
        try:  # the responder may close before reading all of a hostile request
            with trio.move_on_after(5):
                await stream.send_all(request)
            with trio.move_on_after(15):
                while chunk := await stream.receive_some(65536):
                    out += chunk
        except trio.BrokenResourceError:
            pass
    return out


async def test_challenge_responder_takes_hostile_requests() -> None:
    import trio

    challenges = acmecert.Challenges()
    challenges.set("tok-1", "tok-1.thumbprint")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(acmecert.serve_challenges, "127.0.0.1:0", challenges)
        ok = await _exchange(port, b"GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"\r\n\r\ntok-1.thumbprint")
        for request in [
            b"GET /.well-known/acme-challenge/tok-2 HTTP/1.1\r\nHost: x\r\n\r\n",  # unknown token
            b"GET /.well-known/acme-challenge/../tok-1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /.well-known/acme-challenge/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        ]:
            assert (await _exchange(port, request)).startswith(b"HTTP/1.1 404"), request
        for request in [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello on the HTTP port
            b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",  # a head past the limit
            b"NONSENSE\r\n\r\n",
        ]:
            assert b"tok-1.thumbprint" not in await _exchange(port, request)
        # still answering after all that
        ok = await _exchange(port, b"GET /.well-known/acme-challenge/tok-1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200")
        with pytest.raises(ConfigError, match="cannot answer HTTP-01 challenges"):  # the port is taken
            await acmecert.serve_challenges(f"127.0.0.1:{port}", challenges)
        nursery.cancel_scope.cancel()
