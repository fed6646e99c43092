"""The console served on the admin listen address makes share links (and downloads) that point at
the S3 port: built from the request's Host, they pointed at the admin address, which serves no
S3, so every one was a 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from tests.conftest import DaemonProc, running


def test_share_links_from_the_admin_address_point_at_the_s3_port(tmp_path: Path) -> None:
    config = tmp_path / "stowage.toml"
    config.write_text('[admin]\nlisten = "127.0.0.1:0"\n')
    with running(DaemonProc(tmp_path / "data", ["--no-mount", "--config", str(config)])) as d:
        s3: Any = d.s3()
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="k.txt", Body=b"hello")
        s3_port = d.endpoint.rsplit(":", 1)[1]
        for port in (s3_port, d.info["admin_port"]):
            base = f"http://127.0.0.1:{port}/_stowage/v1/console/api/"
            s = requests.Session()
            token = s.post(base + "login", json={"access_key": d.access_key, "secret_key": d.secret_key},
                           timeout=30).json()["token"]
            for download in (False, True):
                url = s.post(base + "presign", json={"bucket": "bkt", "key": "k.txt", "download": download},
                             headers={"X-Stowage-Console-Token": token}, timeout=30).json()["url"]
                assert url.startswith(f"http://127.0.0.1:{s3_port}/"), url
                r = requests.get(url, timeout=30)
                assert (r.status_code, r.content) == (200, b"hello")
