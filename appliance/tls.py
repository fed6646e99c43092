"""HTTPS out of the box for the S3 gateway.

- `tls_wanted(cfg)`: [tls] mode "auto" serves HTTPS for the installed appliance and for any listen
  address that is not loopback; the embedded mode on 127.0.0.1 stays plain HTTP (the quick start).
- `prepare(cfg)`: the certificate to serve. A configured one (s3.tls_cert/s3.tls_key) is used as
  it is; otherwise a self-signed one is generated once under <state_dir>/tls (key 0600) for the
  box's host names and addresses, and regenerated when it nears its end of validity.
- `TlsContexts`: the current server context, swapped whole on reload, so connections in flight
  keep the context they were accepted with and nothing is dropped. `serve_reload` reloads on
  SIGHUP (`systemctl reload stowage`) and when the certificate or key file changes.
- `client_env(cfg)`: AWS_CA_BUNDLE (and the endpoint) for `stowage credentials --env`.
- [tls] mode = "acme": the certificate comes from an ACME CA (appliance/acmecert.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import Config, parse_listen

log = logging.getLogger("stowage.tls")

VALIDITY = dt.timedelta(days=825)  # the longest validity Apple's and other strict clients accept
RENEW_BEFORE = dt.timedelta(days=30)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_wanted(cfg: Config) -> bool:
    if cfg.s3.tls_cert:
        return True
    if cfg.tls.mode != "auto":
        return cfg.tls.mode in ("on", "acme")
    host, _ = parse_listen(cfg.s3.listen)
    return not cfg.embedded or not is_loopback(host)


def generated_dir(cfg: Config) -> Path:
    return Path(cfg.state_dir) / "tls"


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    generated: bool  # made here (self-signed), not configured

    def fingerprint(self) -> str:
        return fingerprint(self.cert.read_bytes())


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER form, as AA:BB:..., the form clients that pin it take."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def host_names(cfg: Config) -> tuple[list[str], list[IPAddress]]:
    """The DNS names and addresses a client may use to reach this box."""
    names = ["localhost"]
    addrs: list[IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
    host, _ = parse_listen(cfg.s3.listen)
    extra = [*cfg.tls.names, host]
    try:
        import psutil

        extra += [a.address.split("%")[0] for nic in psutil.net_if_addrs().values() for a in nic
                  if a.family in (socket.AF_INET, socket.AF_INET6)]
    except (ImportError, OSError):
        pass
    for item in extra:
        try:
            addr = ipaddress.ip_address(item)
        except ValueError:
            if item and item not in names:
                names.append(item)
            continue
        if not addr.is_unspecified and addr not in addrs:
            addrs.append(addr)
    return names, addrs


def generate(cert_path: Path, key_path: Path, names: list[str], addrs: list[IPAddress]) -> None:
    """A self-signed server certificate (P-256) that also serves as its own CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[-1] if len(names) > 1 else names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stowage appliance")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names] + [x509.IPAddress(a) for a in addrs]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _needs_renewal(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE


def prepare(cfg: Config) -> CertFiles | None:
    """The certificate the gateway serves, generating the self-signed one when needed."""
    if cfg.s3.tls_cert:
        return CertFiles(Path(cfg.s3.tls_cert), Path(cfg.s3.tls_key), generated=False)
    if not tls_wanted(cfg):
        return None
    if cfg.tls.mode == "acme":
        return acme_placeholder(cfg)
    d = generated_dir(cfg)
    files = CertFiles(d / "cert.pem", d / "key.pem", generated=True)
    if not files.key.exists() or _needs_renewal(files.cert):
        names, addrs = host_names(cfg)
        generate(files.cert, files.key, names, addrs)
        log.warning("generated a self-signed TLS certificate %s for %s", files.cert,
                    ", ".join([*names, *map(str, addrs)]))
    return files


def acme_dir(cfg: Config) -> Path:
    """Where [tls] mode = "acme" keeps its certificate and account (appliance/acmecert.py)."""
    return generated_dir(cfg) / "acme"


def acme_placeholder(cfg: Config) -> CertFiles:
    """The files the gateway serves in mode "acme": until the CA's certificate is there, a
    self-signed placeholder for [acme] names, so the gateway starts at once."""
    d = acme_dir(cfg)
    files = CertFiles(d / "cert.pem", d / "key.pem", generated=False)
    if not files.cert.exists() or not files.key.exists():
        generate(files.cert, files.key, list(cfg.acme.names), [])
        log.warning("ACME: serving a self-signed placeholder for %s until the certificate is issued",
                    ", ".join(cfg.acme.names))
    return files


def server_context(files: CertFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(files.cert, files.key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsContexts:
    """The gateway's current server context; `current` is what each new connection is accepted with."""

    def __init__(self, files: CertFiles) -> None:
        self.files = files
        self._stamp = self._stat()
        self._ctx = server_context(files)
        self.fingerprint = files.fingerprint()

    def current(self) -> ssl.SSLContext:
        return self._ctx

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for p in (self.files.cert, self.files.key):
            try:
                st = p.stat()
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((0, 0, 0))
        return tuple(out)

    def changed(self) -> bool:
        return self._stat() != self._stamp

    def reload(self) -> bool:
        """Load the files again; a broken pair (say, a certificate written before its key) is
        logged and the context in use is kept."""
        self._stamp = self._stat()
        try:
            ctx = server_context(self.files)
            fp = self.files.fingerprint()
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("TLS certificate %s not reloaded, keeping the one in use: %s", self.files.cert, exc)
            return False
        self._ctx, self.fingerprint = ctx, fp
        log.info("TLS certificate %s reloaded (SHA-256 %s)", self.files.cert, fp)
        return True


async def serve_reload(contexts: TlsContexts | None, interval: float, *,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Reload on SIGHUP and when the files change. SIGHUP is taken even without TLS, so a
    `systemctl reload` never kills the daemon."""
    with trio.open_signal_receiver(signal.SIGHUP) as hups:
        task_status.started()
        while True:
            hup = False
            with trio.move_on_after(interval):
                await hups.__anext__()
                hup = True
            if contexts is None:
                if hup:
                    log.info("SIGHUP: no TLS certificate to reload")
                continue
            if hup or contexts.changed():
                await trio.to_thread.run_sync(contexts.reload)


def ca_bundle(cfg: Config) -> Path | None:
    """The file a client should trust: the generated certificate, or a configured one that is
    self-signed (one issued by a public CA needs no bundle)."""
    if cfg.s3.tls_cert:
        files = CertFiles(Path(cfg.s3.tls_cert), Path(cfg.s3.tls_key), False)
    elif cfg.tls.mode == "acme":  # the CA's certificate needs no bundle; the placeholder does
        files = CertFiles(acme_dir(cfg) / "cert.pem", acme_dir(cfg) / "key.pem", False)
    else:
        files = CertFiles(generated_dir(cfg) / "cert.pem", generated_dir(cfg) / "key.pem", True)
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    except (OSError, ValueError):
        return None
    return files.cert if files.generated or cert.issuer == cert.subject else None


def client_endpoint(cfg: Config) -> str:
    """The URL a client on this box uses: the running daemon's, else the configured one; a
    wildcard listen address is reached on loopback (in the generated certificate)."""
    import json

    try:
        running = json.loads((Path(cfg.state_dir) / "run" / "daemon.json").read_text())
        url = str(running.get("s3_endpoint") or "")
    except (OSError, ValueError):
        url = ""
    if not url:
        host, port = parse_listen(cfg.s3.listen)
        url = f"{'https' if tls_wanted(cfg) else 'http'}://{host}:{port}"
    for wildcard in ("0.0.0.0", "::", "[::]"):
        url = url.replace(f"//{wildcard}:", "//127.0.0.1:")
    return url


def client_env(cfg: Config) -> dict[str, str]:
    """The endpoint variables of `stowage credentials --env`: AWS_ENDPOINT_URL, and
    AWS_CA_BUNDLE when the endpoint is HTTPS with a certificate clients do not already trust."""
    url = client_endpoint(cfg)
    env = {"AWS_ENDPOINT_URL": url}
    bundle = ca_bundle(cfg) if url.startswith("https://") else None
    if bundle is not None:
        env["AWS_CA_BUNDLE"] = str(bundle)
    return env
