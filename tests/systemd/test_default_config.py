"""The commented default config (systemd/stowage.toml) matches appliance/config.py exactly:
it loads as the defaults, every setting is documented, and uncommenting every documented
setting still loads (so no comment shows a misspelt name or a value of the wrong type)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace
from pathlib import Path

from appliance.config import (
    Config,
    DiskConfig,
    MountBucketConfig,
    NotifyTargetConfig,
    PoolConfig,
    StorageClassConfig,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "systemd/stowage.toml"


MAPPINGS: set[str] = set()  # tables of free-form NAME = value: the table is the setting
# tables of tables, documented by examples (together they show every field of the value type)
EXAMPLES = {"mount.buckets": ("mount.buckets.photos",),
            "notify.targets": ("notify.targets.thumbnails", "notify.targets.audit"),
            "storage_classes": ("storage_classes.FAST",)}
EXAMPLE_TYPES = {"mount.buckets": MountBucketConfig, "notify.targets": NotifyTargetConfig,
                 "storage_classes": StorageClassConfig}


def uncommented(text: str) -> str:
    text = re.sub(r"(?m)^#(?=[A-Za-z0-9_]+ = )", "", text)
    for table in ("[[disks]]", *(f"[{m}]" for m in (*MAPPINGS, *(e for ex in EXAMPLES.values() for e in ex)))):
        text = text.replace("#" + table, table)
    return text


def documented_settings(text: str) -> set[str]:
    names, table = set(), ""
    for line in uncommented(text).splitlines():
        if m := re.match(r"^\[\[?([A-Za-z0-9_.]+)\]\]?", line):
            table = m.group(1)
            table = next((f"{name}.*" for name, ex in EXAMPLES.items() if table in ex), table)
            if table in MAPPINGS:
                names.add(table)
        elif (m := re.match(r"^([a-z0-9_]+) = ", line)) and table not in MAPPINGS:
            names.add(f"{table}.{m.group(1)}" if table else m.group(1))
    return names


def config_settings() -> set[str]:
    names = set()
    for f in dataclasses.fields(Config):
        default = getattr(Config(), f.name)
        if dataclasses.is_dataclass(default):
            names |= {f"{f.name}.{sub.name}" for sub in dataclasses.fields(default)} - EXAMPLES.keys()
            for name, cls in EXAMPLE_TYPES.items():
                if name.startswith(f"{f.name}."):
                    names |= {f"{name}.*.{sub.name}" for sub in dataclasses.fields(cls)}
        elif f.name in EXAMPLE_TYPES:
            names |= {f"{f.name}.*.{sub.name}" for sub in dataclasses.fields(EXAMPLE_TYPES[f.name])}
        elif f.name == "pools":
            names |= {f"pools.default.{sub.name}" for sub in dataclasses.fields(PoolConfig)}
        elif f.name == "disks":
            names |= {f"disks.{sub.name}" for sub in dataclasses.fields(DiskConfig)}
        else:
            names.add(f.name)
    return names


def test_shipped_config_is_the_defaults() -> None:
    assert load_config(SHIPPED) == Config()


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert documented_settings(SHIPPED.read_text()) == config_settings()


def test_uncommented_values_load_and_equal_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "all.toml"
    path.write_text(uncommented(SHIPPED.read_text()))
    cfg = load_config(path)
    assert cfg.disks == [DiskConfig(path="/srv/disk0", pool="default")]
    assert cfg.storage_classes == {"FAST": StorageClassConfig(pool="default", profile="standard")}
    assert cfg.mount.buckets == {"photos": MountBucketConfig(owner="1000", group="1000", file_mode="0640",
                                                             dir_mode="0750")}
    assert set(cfg.notify.targets) == {"thumbnails", "audit"}
    assert cfg.notify.targets["audit"] == NotifyTargetConfig(type="file", path="/var/log/stowage/events.jsonl")
    assert replace(cfg, disks=[], storage_classes={}, mount=replace(cfg.mount, buckets={}),
                   notify=replace(cfg.notify, targets={})) == Config()
