"""kill -9 of the daemon while 8 writers create files through the mount: every file whose
fsync() returned reads back byte-exact through S3 after the restart (fsync is the mount's
acknowledgement of durability; concurrent commits share their syncs, which must not weaken it)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import fuse_available

WRITERS = 8


def test_fsynced_files_survive_kill_9(daemon_factory: Any, tmp_path: Path) -> None:
    if not fuse_available():
        pytest.skip("/dev/fuse is not usable here")
    d = daemon_factory(["--mount", str(tmp_path / "mnt")])
    d.s3().create_bucket(Bucket="kill9")
    root = Path(str(d.mount)) / "kill9"
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{w}-{i}.bin"
            body = os.urandom(1 + (w * 7919 + i * 104729) % 16384)
            try:
                fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, body)
                    os.fsync(fd)
                    with lock:
                        acked[name] = hashlib.md5(body).hexdigest()
                finally:
                    os.close(fd)
            except OSError:
                return  # the daemon is gone
            i += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acked) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    d.kill()  # SIGKILL, then a lazy unmount of the dead mount
    stop.set()
    for t in threads:
        t.join(30)
    with lock:
        survivors = dict(acked)
    assert len(survivors) >= 20, "the writers made too little progress"

    d.start()
    s3 = d.s3()
    for name, md5 in survivors.items():
        body = s3.get_object(Bucket="kill9", Key=name)["Body"].read()
        assert hashlib.md5(body).hexdigest() == md5, name
