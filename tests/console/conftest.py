"""Console fixtures: one real daemon per module, a logged-in `requests` session, users with
chosen policies, loop devices for adding disks (root only), and headless Chromium (Debian's
`chromium` + `chromium-driver`, driven by Selenium) for the browser tests, with
screenshots saved under tmp/artifacts/console/."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, DaemonProc, running
from tests.diskmgr.conftest import GIB, _can_loop, _detach

ARTIFACTS = REPO / "tmp" / "artifacts" / "console"
TOKEN = "X-Stowage-Console-Token"


@pytest.fixture(scope="module")
def sysroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where disks added through the console write their boot mounts, instead of the live /etc."""
    return tmp_path_factory.mktemp("sysroot")


@pytest.fixture(scope="module")
def cd(tmp_path_factory: pytest.TempPathFactory, sysroot: Path) -> Iterator[DaemonProc]:
    d = DaemonProc(tmp_path_factory.mktemp("console") / "data", ["--no-mount"], {"STOWAGE_SYSCONF_ROOT": str(sysroot)})
    with running(d):
        yield d


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Sparse 1 GiB loop devices, unmounted and detached after the module."""
    if not _can_loop():
        pytest.skip("needs root and loop devices")
    tmp = tmp_path_factory.mktemp("loops")
    made: list[str] = []

    def make() -> str:
        img = tmp / f"{len(made)}.img"
        with open(img, "wb") as f:
            f.truncate(GIB)
        made.append(subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True,
                                   check=True).stdout.strip())
        return made[-1]

    yield make
    for dev in made:
        _detach(dev)


def console_url(d: DaemonProc) -> str:
    return d.endpoint + "/_stowage/v1/console/"


class ConsoleClient:
    """The console API as its page uses it: a cookie jar plus the request token header."""

    def __init__(self, d: DaemonProc, access_key: str, secret_key: str) -> None:
        self.base = console_url(d) + "api/"
        self.http = requests.Session()
        r = self.http.post(self.base + "login", json={"access_key": access_key, "secret_key": secret_key},
                           timeout=30)
        assert r.status_code == 200, r.text
        self.login = r
        self.token = r.json()["token"]

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {TOKEN: self.token, **kw.pop("headers", {})}
        return self.http.request(method, self.base + path, headers=headers, timeout=60, **kw)

    def iam(self, action: str, **params: str) -> requests.Response:
        return self("POST", "iam", data={"Action": action, "Version": "2010-05-08", **params})


def add_user(d: DaemonProc, name: str, *policies: str) -> tuple[str, str]:
    args = [x for p in policies for x in ("--policy", p)]
    r = json.loads(d.cli("user", "add", name, *args, "--json").stdout)
    return r["access_key"], r["secret_key"]


@pytest.fixture(scope="module")
def root(cd: DaemonProc) -> ConsoleClient:
    return ConsoleClient(cd, cd.access_key, cd.secret_key)


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("chromium and chromium-driver are not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
