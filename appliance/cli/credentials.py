"""How a client on this box reaches the gateway as root (`stowage import s3` writes through it):
the root key (config or the generated credentials file, never generated here), the endpoint, and
AWS_CA_BUNDLE when the gateway serves HTTPS with its own certificate (appliance/tls.py). The
`stowage credentials` command itself is in operator.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

from appliance.config import Config
from appliance.tls import client_env


def root_key(cfg: Config) -> tuple[str, str] | None:
    if cfg.s3.access_key:
        return cfg.s3.access_key, cfg.s3.secret_key
    if cfg.credentials_file:
        try:
            raw = tomllib.loads(Path(cfg.credentials_file).read_text())
            return str(raw["access_key"]), str(raw["secret_key"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return None
    return None


def credentials_env(cfg: Config) -> dict[str, str]:
    env: dict[str, str] = {}
    key = root_key(cfg)
    if key is not None:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key
    env["AWS_DEFAULT_REGION"] = cfg.s3.region
    env.update(client_env(cfg))
    return env
