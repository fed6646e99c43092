"""ACME (HTTP-01) certificates for a box with a public name: [tls] mode = "acme" with [acme] names.

- Until the first certificate is issued the gateway serves a self-signed placeholder for those
  names (tls.acme_placeholder), so it starts at once; the certificate replaces it when it comes.
- `serve` answers http://NAME/.well-known/acme-challenge/TOKEN on [acme] http_listen (port 80:
  the CA connects there) and, every check_interval, orders a certificate when the one in use is
  the placeholder, names other names, or has fewer than renew_days left; a failed order is tried
  again after retry_interval. The gateway's context is reloaded at once (appliance/tls.py), so
  open connections keep theirs.
- Files under <state_dir>/tls/acme (directory 0700, files 0600): cert.pem (the full chain),
  key.pem, account.json (the account's URL) and account.key, the account's private key wrapped
  by the appliance master key (never in plain text on disk).

The protocol is the `acme` library's (certbot's client library); nothing of it is reimplemented.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import h11
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKRSA

from .config import Config, ConfigError, parse_listen
from .iam.masterkey import MasterKey
from .tls import TlsContexts, acme_dir, write_private

log = logging.getLogger("stowage.acme")

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
ORDER_TIMEOUT = dt.timedelta(seconds=120)
MAX_REQUEST_HEAD = 8192


@dataclass(frozen=True)
class AcmeFiles:
    dir: Path

    @property
    def cert(self) -> Path:
        return self.dir / "cert.pem"

    @property
    def key(self) -> Path:
        return self.dir / "key.pem"

    @property
    def account_key(self) -> Path:
        return self.dir / "account.key"

    @property
    def account(self) -> Path:
        return self.dir / "account.json"


def files_of(cfg: Config) -> AcmeFiles:
    return AcmeFiles(acme_dir(cfg))


def due(cert_path: Path, names: list[str], renew_days: int) -> str | None:
    """Why a certificate must be ordered now, or None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return "no readable certificate"
    if cert.issuer == cert.subject:
        return "the self-signed placeholder is in use"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        have = set()
    if have != set(names):
        return f"it names {', '.join(sorted(have)) or 'nothing'}, not {', '.join(sorted(names))}"
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    if left < dt.timedelta(days=renew_days):
        return f"it ends in {left.days} days"
    return None


class Challenges:
    """HTTP-01 tokens and their key authorizations, set by the ordering thread, read by the
    responder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}

    def set(self, token: str, validation: str) -> None:
        with self._lock:
            self._tokens[token] = validation

    def drop(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def get(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)


# --- the account -------------------------------------------------------------------------------


def _account_context(directory: str) -> bytes:
    return b"acme-account:" + directory.encode()


def load_account_key(files: AcmeFiles, master: MasterKey, directory: str) -> JWKRSA:
    """The account key for this directory, made (and stored wrapped) on first use."""
    context = _account_context(directory)
    if files.account_key.exists():
        pem = master.unwrap(base64.b64decode(files.account_key.read_bytes()), context)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{files.account_key}: not an RSA key")
        return JWKRSA(key=key)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    files.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(files.account_key, base64.b64encode(master.wrap(pem, context)))
    return JWKRSA(key=key)


# --- ordering ----------------------------------------------------------------------------------


def order(cfg: Config, master: MasterKey, challenges: Challenges) -> None:
    """Order a certificate for [acme] names (blocking: run it in a thread); on success cert.pem and
    key.pem hold it. Raises the acme library's errors, or OSError, on failure."""
    from acme import challenges as acme_challenges
    from acme import client, crypto_util, errors, messages

    files = files_of(cfg)
    acme_cfg = cfg.acme
    account_key = load_account_key(files, master, acme_cfg.directory)
    verify = acme_cfg.ca_bundle or True
    # requests (under ClientNetwork) takes a CA bundle's path where the annotation says bool
    net = client.ClientNetwork(account_key, user_agent="stowage", verify_ssl=cast(bool, verify))
    directory = client.ClientV2.get_directory(acme_cfg.directory, net)
    acme = client.ClientV2(directory, net=net)
    registration = messages.NewRegistration.from_data(email=acme_cfg.email or None, terms_of_service_agreed=True)
    try:
        regr = acme.new_account(registration)
    except errors.ConflictError as exc:  # the key is registered already: use that account
        regr = acme.query_registration(messages.RegistrationResource(uri=exc.location, body=messages.Registration()))
        net.account = regr
    write_private(files.account, json.dumps({"directory": acme_cfg.directory, "uri": regr.uri}).encode())

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    orderr = acme.new_order(crypto_util.make_csr(key_pem, list(acme_cfg.names)))
    tokens: list[str] = []
    try:
        for authz in orderr.authorizations:
            if authz.body.status == messages.STATUS_VALID:  # the CA reuses a recent validation
                continue
            chall = next((c for c in authz.body.challenges if isinstance(c.chall, acme_challenges.HTTP01)), None)
            if chall is None:
                raise errors.Error(f"{authz.body.identifier.value}: the CA offers no HTTP-01 challenge")
            response, validation = chall.response_and_validation(account_key)
            token = chall.chall.encode("token")
            challenges.set(token, validation)
            tokens.append(token)
            acme.answer_challenge(chall, response)
        finished = acme.poll_and_finalize(orderr, deadline=dt.datetime.now() + ORDER_TIMEOUT)
    finally:
        for token in tokens:
            challenges.drop(token)
    # the key first: until the chain replaces the placeholder, the pair in use stays consistent
    # (a reload that finds a mismatched pair keeps the context in use)
    write_private(files.key, key_pem)
    write_private(files.cert, finished.fullchain_pem.encode())


# --- the HTTP-01 responder ---------------------------------------------------------------------


async def _answer(stream: trio.SocketStream, challenges: Challenges) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
    with trio.move_on_after(10):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(4096)
                if not data:
                    return
                conn.receive_data(data)
                continue
            if not isinstance(event, h11.Request):
                return
            target = event.target.decode("ascii", "replace")
            token = target[len(CHALLENGE_PREFIX):] if target.startswith(CHALLENGE_PREFIX) else ""
            validation = challenges.get(token) if event.method == b"GET" and token else None
            body = (validation or "not found").encode()
            status = 200 if validation else 404
            headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers))
                                  + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            return


async def serve_challenges(listen: str, challenges: Challenges, *,
                           task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    host, port = parse_listen(listen, "acme.http_listen")

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _answer(stream, challenges)
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    try:
        listeners = await trio.open_tcp_listeners(port, host=host or None)
    except OSError as exc:  # port 80 taken (another web server) or not allowed
        raise ConfigError(f"acme.http_listen {listen}: cannot answer HTTP-01 challenges there: "
                          f"{exc.strerror or exc}") from exc
    bound = listeners[0].socket.getsockname()[1]
    log.info("ACME: answering HTTP-01 challenges on %s:%d", host, bound)
    task_status.started(bound)
    await trio.serve_listeners(handler, listeners)


BAD_NONCE_RETRIES = 3  # orders retried after BAD_NONCE_PAUSE in a row before retry_interval applies
BAD_NONCE_PAUSE = 2.0


async def serve(cfg: Config, contexts: TlsContexts, master: MasterKey, *,
                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The challenge responder and the renewal loop."""
    challenges = Challenges()
    files = files_of(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_challenges, cfg.acme.http_listen, challenges)
        task_status.started()
        quick_retries = 0
        while True:
            why = due(files.cert, list(cfg.acme.names), cfg.acme.renew_days)
            wait = cfg.acme.check_interval
            if why is not None:
                log.info("ACME: ordering a certificate for %s from %s (%s)", ", ".join(cfg.acme.names),
                         cfg.acme.directory, why)
                try:
                    await trio.to_thread.run_sync(order, cfg, master, challenges)
                except Exception as exc:  # any failure of the CA, the network or the library: retried
                    # a rejected anti-replay nonce (RFC 8555 6.5: CAs may reject any, pebble 5%) is
                    # the CA's, not ours: the library retries once, and the order is retried soon
                    quick = getattr(exc, "code", None) == "badNonce" and quick_retries < BAD_NONCE_RETRIES
                    quick_retries = quick_retries + 1 if quick else 0
                    wait = BAD_NONCE_PAUSE if quick else cfg.acme.retry_interval
                    log.error("ACME: the order failed (retried in %.0f s): %s", wait, exc)
                else:
                    quick_retries = 0
                    await trio.to_thread.run_sync(contexts.reload)
                    log.warning("ACME: certificate issued for %s (SHA-256 %s)", ", ".join(cfg.acme.names),
                                contexts.fingerprint)
            await trio.sleep(wait)
