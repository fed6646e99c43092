"""Boot the appliance image with systemd-nspawn (systemd as PID 1) and use it as a client would.

images/build.sh builds the Debian 12 root filesystem; its base layers are cached in
$STOWAGE_IMAGE_CACHE (default /var/cache/stowage-images: outside the checkout, because CI runs
in a fresh clone and images/cache/ would start empty every time). A cold cache costs a
debootstrap (several minutes); a warm one about a minute.

The container shares the host's network (no --private-network), and the image's config makes
the service listen on a free 127.0.0.1 port chosen here, so boto3 on the host talks to the
booted service directly. Commands run inside the container through nsenter into its PID 1
(the host may not run systemd itself, so there is no machinectl). The steps are tests of one
module, in order: units verify inside the image, boot until `systemctl is-active stowage`,
S3 PUT/GET, a read through the FUSE mount, a clean poweroff (nspawn exits 0, the journal
shows the service stopping cleanly), an in-place upgrade that keeps the data, and a second
boot that serves the object written by the first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("STOWAGE_IMAGE_CACHE", "/var/cache/stowage-images"))
ACCESS_KEY = "stowagetestkey"  # fixed in images/build.sh's appliance config
SECRET_KEY = "stowage-test-secret-key-0123456789"
BOOT_DEADLINE = 300.0  # failure deadlines only: a healthy boot takes seconds
BUILD_TIMEOUT = 3600


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "unshare", "journalctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd-container debootstrap util-linux)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist on this host (no FUSE for the booted appliance)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable())),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def _comm(pid: int) -> str:
    """A process's name, or "" once it is gone (children() saw it a moment ago)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Image:
    root: Path
    port: int
    build_log: str


@dataclass
class Container:
    proc: subprocess.Popen[bytes]
    leader: int
    console: Path

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *argv],
                             capture_output=True, text=True, timeout=timeout, check=False)
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(argv)} in the container exited {out.returncode}: {out.stderr}{out.stdout}")
        return out

    def journal(self, unit: str = "stowage") -> str:
        return self.run("journalctl", "-u", unit, "--no-pager", "-o", "short-monotonic", check=False).stdout


def boot(root: Path, console: Path) -> Container:
    with open(console, "ab") as log:
        proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--boot", "--directory", str(root), "--register=no", "--keep-unit",
             f"--machine=stowage-{uuid.uuid4().hex[:8]}", "--bind=/dev/fuse", "--console=read-only"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        kids = [k for k in children(proc.pid) if _comm(k) == "systemd"]
        if kids:
            return Container(proc, kids[0], console)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"systemd-nspawn did not start the container:\n{console.read_text()[-3000:]}")
        time.sleep(0.2)


def wait_active(c: Container) -> None:
    deadline = time.monotonic() + BOOT_DEADLINE
    while True:
        state = c.run("systemctl", "is-active", "stowage", check=False).stdout.strip()
        if state == "active":
            return
        if state == "failed" or c.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"stowage.service is {state!r}:\n{c.journal()[-4000:]}")
        time.sleep(0.5)


def poweroff(c: Container) -> int:
    """What `machinectl poweroff` does: SIGRTMIN+3 to the container's systemd; wait for nspawn."""
    if c.proc.poll() is None:
        os.kill(c.leader, signal.SIGRTMIN + 3)
    try:
        return c.proc.wait(timeout=BOOT_DEADLINE)
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait()
        pytest.fail(f"the container did not power off:\n{c.console.read_text()[-3000:]}")


def s3_client(port: int) -> Any:
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    work = tmp_path_factory.mktemp("image")
    port = free_port()
    out = subprocess.run(
        ["bash", str(REPO / "images/build.sh"), "--cache", str(CACHE), "--output", str(work / "rootfs"),
         "--s3-listen", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )
    assert out.returncode == 0, f"images/build.sh failed:\n{out.stderr[-5000:]}"
    try:
        yield Image(work / "rootfs", port, out.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # ~1 GB; don't leave it to pytest's retention


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[Container]:
    c = boot(image.root, image.root.parent / "console-1.log")
    try:
        yield c
    finally:
        if c.proc.poll() is None:
            with contextlib.suppress(Exception):
                poweroff(c)


BUCKET = "appliance"
KEY = "dir/hello.txt"
BODY = b"written through S3 into the booted appliance\n" * 1000


def test_units_verify_inside_the_image(image: Image) -> None:
    units = ["stowage.service", "stowage-smart-selftest.service", "stowage-smart-selftest.timer"]
    out = subprocess.run(["systemd-analyze", "verify", f"--root={image.root}", "--man=no", *units],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    wants = image.root / "etc/systemd/system/multi-user.target.wants/stowage.service"
    assert wants.is_symlink(), "install.sh did not enable stowage.service"


def test_service_becomes_active(container: Container) -> None:
    wait_active(container)
    show = container.run("systemctl", "show", "stowage", "-p", "Type,NotifyAccess,WatchdogUSec,StatusText,"
                         "NRestarts").stdout
    assert "Type=notify" in show and "NotifyAccess=main" in show
    assert "StatusText=" in show and "StatusText=\n" not in show, show  # the daemon's STATUS= line
    assert "NRestarts=0" in show


def test_s3_put_get_through_the_booted_service(image: Image, container: Container) -> None:
    wait_active(container)
    s3 = s3_client(image.port)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY


def test_read_through_the_mount(container: Container) -> None:
    wait_active(container)
    info = container.run("cat", "/var/lib/stowage/run/daemon.json").stdout
    if '"mount": null' in info and not (REPO / "fusefs/service.py").exists():
        pytest.skip("this build has no FUSE service yet (fusefs/service.py), so the daemon mounts nothing")
    assert '"/srv/stowage"' in info, f"the daemon did not mount /srv/stowage: {info}"
    # Read from the container's own mount namespace, not the service's: this is what a user
    # or an NFS/Samba export on the box sees.
    out = subprocess.run(["nsenter", "-t", str(container.leader), "-a", "cat", f"/srv/stowage/{BUCKET}/{KEY}"],
                         capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == BODY


def test_clean_poweroff(image: Image, container: Container) -> None:
    wait_active(container)
    code = poweroff(container)
    assert code == 0, container.console.read_text()[-3000:]
    journal = subprocess.run(
        ["journalctl", f"--directory={image.root}/var/log/journal", "-u", "stowage", "--no-pager", "-o", "cat"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout
    assert "Deactivated successfully" in journal, journal[-3000:]
    for bad in ("Failed with result", "SIGKILL", "timed out", "Watchdog timeout", "Traceback"):
        assert bad not in journal, journal[-3000:]
    assert not (image.root / "var/lib/stowage/run/daemon.json").exists(), "runfile left behind"


def test_upgrade_in_place_keeps_the_data(image: Image) -> None:
    state = image.root / "var/lib/stowage"
    before = sorted(p.relative_to(state) for p in state.rglob("*") if p.is_file())
    config = (image.root / "etc/stowage/stowage.toml").read_text()
    out = subprocess.run(["bash", str(REPO / "images/build.sh"), "--upgrade", "--output", str(image.root),
                          "--cache", str(CACHE)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert out.returncode == 0, out.stderr[-5000:]
    assert "upgraded stowage" in out.stdout + out.stderr
    assert (image.root / "etc/stowage/stowage.toml").read_text() == config
    after = sorted(p.relative_to(state) for p in state.rglob("*") if p.is_file())
    assert after == before
    c = boot(image.root, image.root.parent / "console-2.log")
    try:
        wait_active(c)
        assert s3_client(image.port).get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY
        # `make install` on the running box, as an operator would from a checkout: systemd is
        # PID 1 here, so install.sh reloads units and restarts the service on the new version.
        pid = c.run("systemctl", "show", "stowage", "-p", "MainPID", "--value").stdout.strip()
        live = c.run("env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "HOME=/root", "bash", "/usr/src/stowage/images/install.sh", "--no-apt", timeout=600)
        assert "restarting stowage.service" in live.stdout, live.stdout + live.stderr
        assert "stowage.service is running" in live.stdout
        wait_active(c)
        assert c.run("systemctl", "show", "stowage", "-p", "MainPID", "--value").stdout.strip() != pid
        assert s3_client(image.port).get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY
    finally:
        code = poweroff(c)
    assert code == 0, c.console.read_text()[-3000:]


def test_wedged_daemon_is_restarted_by_the_watchdog(image: Image) -> None:
    """Real systemd, real watchdog: a drop-in shortens WatchdogSec and enables the daemon's
    debug wedge hook; SIGUSR2 blocks its trio loop, the pings stop, systemd kills it with
    SIGABRT and restarts it, and the restarted daemon serves the data again."""
    dropin = image.root / "etc/systemd/system/stowage.service.d/test-watchdog.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Service]\nWatchdogSec=3\nRestartSec=1\nEnvironment=STOWAGE_DEBUG_WEDGE_SECONDS=30\n")
    c = boot(image.root, image.root.parent / "console-3.log")
    try:
        wait_active(c)
        c.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGUSR2", "stowage")
        deadline = time.monotonic() + BOOT_DEADLINE
        while "NRestarts=1" not in c.run("systemctl", "show", "stowage", "-p", "NRestarts").stdout:
            if time.monotonic() > deadline:
                pytest.fail(f"no watchdog restart:\n{c.journal()[-4000:]}")
            time.sleep(0.5)
        wait_active(c)
        journal = c.journal()
        assert "Watchdog timeout" in journal, journal[-4000:]
        # PYTHONFAULTHANDLER=1 in the unit: the killed daemon left its stacks in the journal,
        # showing where the loop was stuck.
        assert "Fatal Python error: Aborted" in journal and "run_debug_wedge" in journal, journal[-4000:]
        assert s3_client(image.port).get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY
    finally:
        code = poweroff(c)
        dropin.unlink()
    assert code == 0, c.console.read_text()[-3000:]
