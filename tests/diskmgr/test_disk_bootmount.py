"""Boot-time mounts: systemd unit names/text and fstab editing, in a scratch root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from diskmgr import bootmount
from diskmgr.bootmount import BootConfig, host_boot_config, install, systemd_escape_path, uninstall

PATHS = ["/var/lib/stowage/disks/disk-0a1b2c3d4e5f", "/srv/my disk/x", "/mnt/.hidden/a-b_c", "/", "/a//b/"]


@pytest.mark.parametrize("path", PATHS)
def test_escape_matches_systemd_escape(path: str):
    tool = shutil.which("systemd-escape")
    if tool is None:
        pytest.skip("systemd-escape not installed")
    want = subprocess.run([tool, "-p", path], capture_output=True, text=True, check=True).stdout.strip()
    assert systemd_escape_path(path) == want


def test_fstab_install_is_idempotent_and_uninstall_restores(tmp_path: Path):
    boot = BootConfig("fstab", tmp_path)
    (tmp_path / "etc").mkdir()
    original = "# /etc/fstab\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/sr0 /media/cdrom udf,iso9660 user,noauto 0 0"
    (tmp_path / "etc/fstab").write_text(original)
    where = "/var/lib/stowage/disks/disk-0a1b2c3d4e5f"
    msg = install(boot, "disk-0a1b2c3d4e5f", "1111-2222", where, "xfs", "data", "default")
    assert "fstab" in msg
    install(boot, "disk-0a1b2c3d4e5f", "1111-2222", where, "xfs", "data", "default")  # again: one entry
    text = (tmp_path / "etc/fstab").read_text()
    assert text.startswith(original + "\n")
    assert text.count("UUID=1111-2222") == 1
    assert (f"UUID=1111-2222 {where} xfs noatime,nosuid,nodev,noexec,nofail,x-systemd.device-timeout=30s 0 0\n"
            ) in text
    assert "# stowage disk disk-0a1b2c3d4e5f (data, pool default)" in text
    uninstall(boot, "disk-0a1b2c3d4e5f", where)
    assert (tmp_path / "etc/fstab").read_text() == original + "\n"


def test_fstab_escapes_spaces_and_ext4_gets_fsck(tmp_path: Path):
    boot = BootConfig("fstab", tmp_path)
    install(boot, "disk-1", "u", "/srv/my disk", "ext4", "data", "p")
    line = (tmp_path / "etc/fstab").read_text().splitlines()[1]
    assert line.split() == ["UUID=u", "/srv/my\\040disk", "ext4",
                            "noatime,nosuid,nodev,noexec,nofail,x-systemd.device-timeout=30s", "0", "2"]


def test_systemd_unit_and_enable_link(tmp_path: Path):
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    boot = host_boot_config(str(tmp_path))
    assert boot.mode == "systemd" and not boot.live
    where = "/var/lib/stowage/disks/disk-0a1b2c3d4e5f"
    install(boot, "disk-0a1b2c3d4e5f", "1111-2222", where, "xfs", "data", "default")
    name = "var-lib-stowage-disks-disk\\x2d0a1b2c3d4e5f.mount"
    unit = tmp_path / "etc/systemd/system" / name
    text = unit.read_text()
    assert "What=/dev/disk/by-uuid/1111-2222\n" in text and f"Where={where}\n" in text
    assert "Type=xfs\n" in text and "WantedBy=local-fs.target\n" in text
    assert "Options=noatime,nosuid,nodev,noexec\n" in text  # a data disk never runs or grants anything
    link = tmp_path / "etc/systemd/system/local-fs.target.wants" / name
    assert link.is_symlink() and link.resolve() == unit.resolve()
    uninstall(boot, "disk-0a1b2c3d4e5f", where)
    assert not unit.exists() and not link.is_symlink()


def test_without_systemd_the_host_uses_fstab(tmp_path: Path):
    assert host_boot_config(str(tmp_path)).mode == "fstab"
    assert bootmount.mount_unit_name("/srv/a") == "srv-a.mount"
