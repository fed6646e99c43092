"""The root key (config, environment, or generated in the embedded mode) and how access keys and
secrets are made. IAM users' keys are in the metadata DB (users.py); secrets are never logged.
"""

from __future__ import annotations

import os
import secrets
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config, ConfigError
from appliance.engine.names import cli_safe_token
from diskmgr.durable import write_atomic

ROOT_USER = "root"  # the root key's user: reserved, never an IAM user
_AK_ALPHABET = string.ascii_uppercase + string.digits


def new_access_key() -> str:
    return "STW" + "".join(secrets.choice(_AK_ALPHABET) for _ in range(17))


def new_secret_key() -> str:
    return cli_safe_token(30)[:40]


@dataclass
class RootKey:
    access_key: str
    secret_key: str
    generated: bool = False  # True only on the start that created it (print it once)


def resolve_root_key(cfg: Config) -> RootKey:
    """Environment beats config; the embedded mode generates and keeps a key under the data dir."""
    env_ak = os.environ.get("STOWAGE_ROOT_ACCESS_KEY", "")
    env_sk = os.environ.get("STOWAGE_ROOT_SECRET_KEY", "")
    if env_ak or env_sk:
        if not (env_ak and env_sk):
            raise ConfigError("STOWAGE_ROOT_ACCESS_KEY and STOWAGE_ROOT_SECRET_KEY must be set together")
        return RootKey(env_ak, env_sk)
    if cfg.s3.access_key:
        return RootKey(cfg.s3.access_key, cfg.s3.secret_key)
    if not cfg.credentials_file:
        raise ConfigError("s3.access_key/s3.secret_key are not set (or set STOWAGE_ROOT_ACCESS_KEY/"
                          "STOWAGE_ROOT_SECRET_KEY)")
    path = Path(cfg.credentials_file)
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            return RootKey(str(raw["access_key"]), str(raw["secret_key"]))
        except (OSError, KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: unreadable credentials file ({exc})") from exc
    key = RootKey(new_access_key(), new_secret_key(), generated=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mode 0600 from the start: the temporary file is never readable by others either
    write_atomic(path, "# Stowage root S3 credentials (generated on first start)\n"
                       f'access_key = "{key.access_key}"\nsecret_key = "{key.secret_key}"\n', 0o600)
    return key
