"""A config file's text loaded as the daemon loads it: what the config tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Config, ConfigError, load_config


def load_text(tmp_path: Path, text: str) -> Config:
    """`text` written to a file under `tmp_path`, then loaded (ConfigError if it is refused)."""
    p = tmp_path / "s.toml"
    p.write_text(text)
    return load_config(p)


def refused(tmp_path: Path, text: str) -> str:
    """The message `text` is refused with (the test fails if it loads)."""
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    return err.value.message
