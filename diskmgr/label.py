"""A disk's identity label and the "is it really mounted" check.

API (what the engine calls):

    read_label(path) -> DiskLabel
        Read `<path>/.stowage-disk.json`. Raises UnlabelledDisk (no label file), LabelFormatError
        (damaged, or a format version this build does not know).
    verify_label(label, appliance_id, disk_id=None) -> DiskLabel
        ForeignDisk when the label names another appliance (or another disk id than expected).
    open_disk(path, appliance_id, disk_id=None, *, require_mount=True) -> DiskLabel
        The check the daemon runs before it writes anything to a disk: the path is a mounted
        filesystem (NotMounted otherwise: an empty mount point whose disk is missing), it carries
        a label, and the label is ours.
    write_label(path, label)
        Atomically (temp file, fsync, rename, fsync of the directory) write the label.
    new_label(appliance_id, role, pool) -> DiskLabel      a fresh disk id, created now
    is_mounted(path) -> bool      `path` is the root of a mounted filesystem (/proc/self/mountinfo)

Label file format 1 (JSON object; unknown extra keys are kept out, never an error):

    {"format": 1, "appliance_id": "...", "disk_id": "...", "role": "data"|"meta",
     "pool": "default", "created": "2026-11-21T18:00:00Z", "fs_uuid": "..."}

Errors are DiskError/FormatError subclasses from appliance.errors so each edge (CLI exit code,
daemon log) translates them once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .durable import open_regular, write_atomic
from .errors import DiskError, FormatError

LABEL_NAME = ".stowage-disk.json"
LABEL_FORMAT = 1
ROLES = ("data", "meta")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_LABEL_BYTES = 64 * 1024


class UnlabelledDisk(DiskError):
    """The disk carries no Stowage identity label."""

    code = "UnlabelledDisk"


class ForeignDisk(DiskError):
    """The disk's label belongs to another appliance or another disk."""

    code = "ForeignDisk"


class NotMounted(DiskError):
    """The disk's mount point is not a mounted filesystem (the disk is missing)."""

    code = "NotMounted"


class LabelFormatError(FormatError):
    """The disk label is damaged or of an unknown format version."""

    code = "LabelFormatError"


@dataclass(frozen=True)
class DiskLabel:
    appliance_id: str
    disk_id: str
    role: str = "data"
    pool: str = "default"
    created: str = ""  # ISO 8601 UTC
    fs_uuid: str = ""  # filesystem UUID when the disk is a block device we formatted
    format: int = LABEL_FORMAT

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "appliance_id": self.appliance_id,
            "disk_id": self.disk_id,
            "role": self.role,
            "pool": self.pool,
            "created": self.created,
            "fs_uuid": self.fs_uuid,
        }

    def encode(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes, where: str = "label") -> DiskLabel:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise LabelFormatError(f"{where}: damaged label: {exc}") from exc
        if not isinstance(raw, dict):
            raise LabelFormatError(f"{where}: damaged label: not a JSON object")
        version = raw.get("format")
        if version != LABEL_FORMAT:
            raise LabelFormatError(
                f"{where}: label format {version!r} is not supported by this version of Stowage "
                f"(it reads format {LABEL_FORMAT})")
        values: dict[str, str] = {}
        for name in ("appliance_id", "disk_id", "role", "pool", "created", "fs_uuid"):
            v = raw.get(name, "")
            if not isinstance(v, str):
                raise LabelFormatError(f"{where}: damaged label: {name} is not a string")
            values[name] = v
        for name in ("appliance_id", "disk_id", "pool"):
            if not _ID_RE.match(values[name]):
                raise LabelFormatError(f"{where}: damaged label: bad {name} {values[name]!r}")
        if values["role"] not in ROLES:
            raise LabelFormatError(f"{where}: damaged label: unknown role {values['role']!r}")
        return cls(values["appliance_id"], values["disk_id"], values["role"], values["pool"],
                   values["created"], values["fs_uuid"])


def validate_name(kind: str, value: str) -> str:
    """Pool names, disk ids and appliance ids: 1-64 of [A-Za-z0-9._-], not starting with punctuation."""
    if not _ID_RE.match(value):
        raise ValueError(f"{kind} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


def new_disk_id() -> str:
    return "disk-" + secrets.token_hex(6)


def new_label(appliance_id: str, role: str, pool: str = "default", *, disk_id: str = "",
              fs_uuid: str = "") -> DiskLabel:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    validate_name("pool", pool)
    validate_name("appliance id", appliance_id)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return DiskLabel(appliance_id, validate_name("disk id", disk_id or new_disk_id()), role, pool, created,
                     fs_uuid)


def read_label(path: str | os.PathLike[str]) -> DiskLabel:
    file = Path(path) / LABEL_NAME
    try:
        with open_regular(file, follow=False) as f:
            data = f.read(MAX_LABEL_BYTES + 1)
    except FormatError:
        raise LabelFormatError(f"{file}: damaged label: not a regular file") from None
    except FileNotFoundError as exc:
        raise UnlabelledDisk(f"{path}: no Stowage label ({LABEL_NAME}); this disk was not added to an "
                             "appliance (use `stowage disks add`)") from exc
    except OSError as exc:
        raise DiskError(f"{file}: cannot read the label: {exc.strerror}") from exc
    if len(data) > MAX_LABEL_BYTES:
        raise LabelFormatError(f"{file}: damaged label: larger than {MAX_LABEL_BYTES} bytes")
    return DiskLabel.decode(data, str(file))


def verify_label(label: DiskLabel, appliance_id: str, disk_id: str | None = None) -> DiskLabel:
    if label.appliance_id != appliance_id:
        raise ForeignDisk(f"disk {label.disk_id} belongs to appliance {label.appliance_id}, not to this "
                          f"appliance ({appliance_id}); refusing to use it")
    if disk_id is not None and label.disk_id != disk_id:
        raise ForeignDisk(f"expected disk {disk_id} here but found disk {label.disk_id}")
    return label


def open_disk(path: str | os.PathLike[str], appliance_id: str, disk_id: str | None = None, *,
              require_mount: bool = True) -> DiskLabel:
    if require_mount and not is_mounted(path):
        raise NotMounted(f"{path} is not a mounted filesystem: its disk is missing or was not mounted; "
                         "nothing will be written there")
    return verify_label(read_label(path), appliance_id, disk_id)


def write_label(path: str | os.PathLike[str], label: DiskLabel) -> None:
    # 0600 like everything of the appliance's (umask 077): the views that read labels need the
    # metadata DB too, which is private
    write_atomic(Path(path) / LABEL_NAME, label.encode(), 0o600)


# --- mounts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    majmin: str  # "8:16"
    root: str  # path inside the filesystem that is mounted here ("/" for a whole filesystem)
    fstype: str
    source: str
    options: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) < 10 or "-" not in parts[6:]:
            continue
        sep = parts.index("-", 6)
        entries.append(MountEntry(
            mount_point=_unescape(parts[4]), majmin=parts[2], root=_unescape(parts[3]),
            fstype=parts[sep + 1], source=_unescape(parts[sep + 2]), options=parts[5],
        ))
    return entries


def read_mounts() -> list[MountEntry]:
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def mount_at(path: str | os.PathLike[str]) -> MountEntry | None:
    """The filesystem mounted exactly at `path` (the last one wins when mounts are stacked)."""
    real = os.path.realpath(path)
    found = None
    for entry in read_mounts():
        if entry.mount_point == real:
            found = entry
    return found


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """True when `path` is the mount point of a mounted filesystem, as the kernel reports in
    /proc/self/mountinfo. An empty directory left behind when its disk disappeared is not;
    os.path.ismount's device comparison would also miss bind mounts, mountinfo does not."""
    return mount_at(path) is not None
