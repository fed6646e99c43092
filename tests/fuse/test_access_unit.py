"""The configured defaults ([mount] and [mount.buckets.NAME]) over an in-process StowageFS."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from appliance.config import ConfigError, MountBucketConfig
from appliance.engine import PutMeta
from fusefs.operations import StowageFS

from ..configtext import load_text
from .conftest import CTX, FS, object_keys


def configured(fs: FS, **mount: Any) -> FS:
    cfg = fs.store.cfg
    return FS(StowageFS(fs.store, replace(cfg, mount=replace(cfg.mount, **mount)), object_keys(fs.store)), fs.store)


async def test_mount_wide_and_per_bucket_defaults(fs: FS) -> None:
    await fs.store.create_bucket("team")
    for b in ("bkt", "team"):
        await fs.store.put_object(b, "d/f", b"x", PutMeta(user_meta={"mode": "33279", "uid": "7"}))  # untrusted
    fs = configured(fs, owner="nobody", group="5", file_mode="0640",
                    buckets={"team": MountBucketConfig(owner="1000", dir_mode="0770")})
    expect = {
        "bkt": (stat.S_IFDIR | 0o700, 65534, 5), "bkt/d": (stat.S_IFDIR | 0o700, 65534, 5),
        "bkt/d/f": (stat.S_IFREG | 0o640, 65534, 5),
        "team": (stat.S_IFDIR | 0o770, 1000, 5), "team/d": (stat.S_IFDIR | 0o770, 1000, 5),
        "team/d/f": (stat.S_IFREG | 0o640, 1000, 5),
        "": (stat.S_IFDIR | 0o711, 0, 0),
    }
    for path, want in expect.items():
        a = await fs.ops.getattr(await fs.ino(path), CTX)
        assert (a.st_mode, a.st_uid, a.st_gid) == want, path


async def test_a_directory_kept_by_the_mount_keeps_following_the_defaults(fs: FS) -> None:
    await fs.store.put_object("bkt", "d/f", b"x")
    await fs.ops.unlink(await fs.ino("bkt/d"), b"f", CTX)
    marker = fs.store.head_object("bkt", "d/")
    assert "mode" not in marker.user_meta  # no attributes of its own
    opened = configured(fs, buckets={"bkt": MountBucketConfig(dir_mode="0755")})
    a = await opened.ops.getattr(await opened.ino("bkt/d"), CTX)
    assert a.st_mode == stat.S_IFDIR | 0o755


async def test_unknown_user_or_group_stops_the_mount(fs: FS) -> None:
    with pytest.raises(ConfigError, match=r"mount.buckets.bkt.owner: no such user 'no-such-user'"):
        configured(fs, buckets={"bkt": MountBucketConfig(owner="no-such-user")})
    with pytest.raises(ConfigError, match=r"mount.group: no such group 'no-such-group'"):
        configured(fs, group="no-such-group")


@pytest.mark.parametrize(("toml", "error"), [
    ('[mount]\nfile_mode = "0999"\n', "mount.file_mode: expected octal permission bits"),
    ('[mount]\ndir_mode = "4755"\n', "mount.dir_mode: expected permission bits between 0000 and 1777"),
    ('[mount.buckets.b]\nfile_mode = "2640"\n', "mount.buckets.b.file_mode: expected permission bits"),
    ('[mount.buckets.b]\nmode = "0640"\n', "mount.buckets.b.mode: unknown setting"),
    ('[mount.buckets.b]\nowner = 1000\n', "mount.buckets.b.owner: expected a string"),
    ('[mount]\nowner = ""\n', "mount.owner: must not be empty"),
    ('[mount]\nbuckets = 3\n', "mount.buckets: expected a table of buckets"),
])
def test_bad_settings_are_refused_with_their_name(tmp_path: Path, toml: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_text(tmp_path, toml)
