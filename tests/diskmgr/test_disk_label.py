"""Identity labels (golden bytes of format 1, refusals) and the mounted-filesystem check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from diskmgr.label import (
    LABEL_NAME,
    DiskLabel,
    ForeignDisk,
    LabelFormatError,
    NotMounted,
    UnlabelledDisk,
    is_mounted,
    new_label,
    open_disk,
    parse_mountinfo,
    read_label,
    verify_label,
    write_label,
)

GOLDEN_V1 = (
    b'{\n  "format": 1,\n  "appliance_id": "84e02622f5807fbb",\n  "disk_id": "disk-f3d497283954",\n'
    b'  "role": "data",\n  "pool": "default",\n  "created": "2026-11-21T18:42:15Z",\n'
    b'  "fs_uuid": "39ffbca9-6b20-40f4-b5ef-1ba8d3c2b89a"\n}\n'
)
LABEL = DiskLabel("84e02622f5807fbb", "disk-f3d497283954", "data", "default", "2026-11-21T18:42:15Z",
                  "39ffbca9-6b20-40f4-b5ef-1ba8d3c2b89a")


def test_format_1_golden_bytes():
    assert LABEL.encode() == GOLDEN_V1
    assert DiskLabel.decode(GOLDEN_V1) == LABEL


def test_write_then_read(tmp_path: Path):
    write_label(tmp_path, LABEL)
    assert read_label(tmp_path) == LABEL
    assert (tmp_path / LABEL_NAME).stat().st_mode & 0o777 == 0o600  # private, like all of the data dir
    assert [p.name for p in tmp_path.iterdir()] == [LABEL_NAME]  # no temp file left behind
    other = new_label("84e02622f5807fbb", "data", "hdd")
    write_label(tmp_path, other)  # atomic replace
    assert read_label(tmp_path) == other and other.disk_id.startswith("disk-")


def test_unlabelled(tmp_path: Path):
    with pytest.raises(UnlabelledDisk, match="no Stowage label"):
        read_label(tmp_path)


def test_foreign_appliance_and_wrong_disk(tmp_path: Path):
    write_label(tmp_path, LABEL)
    assert verify_label(read_label(tmp_path), "84e02622f5807fbb", "disk-f3d497283954") == LABEL
    with pytest.raises(ForeignDisk, match="belongs to appliance 84e02622f5807fbb"):
        verify_label(read_label(tmp_path), "0000000000000000")
    with pytest.raises(ForeignDisk, match="expected disk disk-aaaa"):
        verify_label(read_label(tmp_path), "84e02622f5807fbb", "disk-aaaa")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (GOLDEN_V1.replace(b'"format": 1', b'"format": 2'), "label format 2 is not supported"),
        (GOLDEN_V1.replace(b'"format": 1,', b""), "label format None is not supported"),
        (b"{not json", "damaged label"),
        (b"[]", "not a JSON object"),
        (GOLDEN_V1.replace(b'"data"', b'"cache"'), "unknown role 'cache'"),
        (GOLDEN_V1.replace(b'"default"', b'"../etc"'), "bad pool"),
        (GOLDEN_V1.replace(b'"default"', b"7"), "pool is not a string"),
        (b" " * (70 * 1024), "larger than"),
    ],
)
def test_damaged_or_unknown_labels_are_refused(tmp_path: Path, content: bytes, match: str):
    (tmp_path / LABEL_NAME).write_bytes(content)
    with pytest.raises(LabelFormatError, match=match):
        read_label(tmp_path)


def test_a_label_that_is_no_regular_file_is_refused_at_once(tmp_path: Path):
    """A FIFO where the label belongs hung the daemon's start (found by fuzzing)."""
    os.mkfifo(tmp_path / LABEL_NAME)
    with pytest.raises(LabelFormatError, match="not a regular file"):
        read_label(tmp_path)
    os.unlink(tmp_path / LABEL_NAME)
    (tmp_path / LABEL_NAME).mkdir()
    with pytest.raises(LabelFormatError, match="not a regular file"):
        read_label(tmp_path)


def test_new_label_validates():
    with pytest.raises(ValueError, match="role"):
        new_label("abc", "cache")
    with pytest.raises(ValueError, match="pool"):
        new_label("abc", "data", "a b")


def test_parse_mountinfo_unescapes():
    text = ("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
    a, b = parse_mountinfo(text)
    assert (a.mount_point, a.majmin, a.root, a.fstype, a.source) == ("/mnt/with space", "98:0", "/mnt1", "ext3",
                                                                     "/dev/root")
    assert b.mount_point == "/" and b.fstype == "ext4"


def test_is_mounted_on_real_mounts(tmp_path: Path, loop_device: str):
    assert is_mounted("/")
    empty = tmp_path / "mnt"
    empty.mkdir()
    assert not is_mounted(empty)
    write_label(empty, LABEL)  # a label on the root filesystem must not make it count as a disk
    with pytest.raises(NotMounted, match="not a mounted filesystem"):
        open_disk(empty, LABEL.appliance_id)
    assert open_disk(empty, LABEL.appliance_id, require_mount=False) == LABEL
    (empty / LABEL_NAME).unlink()
    subprocess.run(["mkfs.ext4", "-q", loop_device], check=True)
    subprocess.run(["mount", loop_device, str(empty)], check=True)
    try:
        assert is_mounted(empty)
        assert is_mounted(str(empty) + "/")  # trailing slash, same mount point
        assert not is_mounted(empty / "lost+found")
        with pytest.raises(UnlabelledDisk):
            open_disk(empty, LABEL.appliance_id)
        write_label(empty, LABEL)
        assert open_disk(empty, LABEL.appliance_id, LABEL.disk_id) == LABEL
    finally:
        subprocess.run(["umount", str(empty)], check=True)
    assert not is_mounted(empty)
    assert not os.listdir(empty)
