"""`stowage tls show [--json]`: how the gateway serves HTTPS: the mode, the certificate in use (or
the one the next start uses), its names, issuer, end and SHA-256 fingerprint, and in mode "acme"
whether (and why) the next check orders a new one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from appliance import tls
from appliance.config import Config

from .common import appliance_options


def _cert_files(cfg: Config) -> Path | None:
    if cfg.s3.tls_cert:
        return Path(cfg.s3.tls_cert)
    if not tls.tls_wanted(cfg):
        return None
    if cfg.tls.mode == "acme":
        return tls.acme_dir(cfg) / "cert.pem"
    return tls.generated_dir(cfg) / "cert.pem"


def describe(cfg: Config) -> dict[str, Any]:
    from cryptography import x509

    from appliance.acmecert import due

    out: dict[str, Any] = {"mode": cfg.tls.mode, "https": tls.tls_wanted(cfg)}
    path = _cert_files(cfg)
    if path is None:
        return out
    out["certificate"] = str(path)
    out["source"] = "configured" if cfg.s3.tls_cert else "acme" if cfg.tls.mode == "acme" else "generated"
    try:
        pem = path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as exc:
        out["error"] = f"not readable yet ({exc.__class__.__name__}): made or ordered at the next start"
    else:
        try:
            names = [str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
        except x509.ExtensionNotFound:
            names = []
        out |= {"names": names,
                "issuer": cert.issuer.rfc4514_string(), "self_signed": cert.issuer == cert.subject,
                "not_after": cert.not_valid_after_utc.isoformat(),
                "days_left": (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days,
                "sha256": tls.fingerprint(pem)}
    if cfg.tls.mode == "acme":
        out["acme"] = {"directory": cfg.acme.directory, "names": list(cfg.acme.names),
                       "http_listen": cfg.acme.http_listen,
                       "due": due(path, list(cfg.acme.names), cfg.acme.renew_days)}
    return out


@click.group("tls")
def tls_group() -> None:
    """HTTPS of the S3 gateway."""


@tls_group.command("show")
@appliance_options
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def show(cfg: Config, as_json: bool) -> None:
    """The mode and the certificate: names, issuer, end, fingerprint, ACME renewal."""
    d = describe(cfg)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    if not d["https"]:
        click.echo(f"mode {d['mode']}: plain HTTP")
        return
    click.echo(f"mode:        {d['mode']} ({d['source']} certificate)")
    click.echo(f"certificate: {d['certificate']}")
    if "error" in d:
        click.echo(f"             {d['error']}")
    else:
        click.echo(f"names:       {', '.join(d['names']) or '-'}")
        click.echo(f"issuer:      {d['issuer']}{' (self-signed)' if d['self_signed'] else ''}")
        click.echo(f"valid until: {d['not_after']} ({d['days_left']} days)")
        click.echo(f"SHA-256:     {d['sha256']}")
    if "acme" in d:
        a = d["acme"]
        click.echo(f"acme:        {a['directory']} for {', '.join(a['names'])}, challenges on {a['http_listen']}")
        click.echo(f"             {'next check orders one: ' + a['due'] if a['due'] else 'not due for renewal'}")


commands = [tls_group]
