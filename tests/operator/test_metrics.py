"""/_stowage/v1/metrics and /_stowage/v1/health/* against the real daemon: a mixed S3 workload,
then the exposition parsed with prometheus_client's parser and its counters compared with the
requests made; who may read the metrics; health in each state."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ..conftest import REPO
from .helpers import http_get, samples, signed_headers, value

METRICS = "/_stowage/v1/metrics"


def _scrape(d: Any, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, headers, body = http_get(d.endpoint, METRICS, {"Authorization": f"Bearer {token}"})
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=")
    return samples(body.decode())


def test_metrics_count_a_mixed_workload(daemon: Any) -> None:
    token = daemon.cli("metrics-token").stdout.strip()
    s3 = daemon.s3()
    s3.create_bucket(Bucket="mixed")
    sizes = [1000, 20000, 5]
    for i, n in enumerate(sizes):
        s3.put_object(Bucket="mixed", Key=f"k{i}", Body=b"x" * n)
    for i in range(2):
        assert len(s3.get_object(Bucket="mixed", Key=f"k{i}")["Body"].read()) == sizes[i]
    s3.head_object(Bucket="mixed", Key="k2")
    s3.delete_object(Bucket="mixed", Key="k2")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="mixed", Key="missing")
    s3.list_objects_v2(Bucket="mixed")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="no-such-bucket-here")
    bad = daemon.s3()
    bad._request_signer._credentials.secret_key = "wrong"  # a wrong secret on purpose
    with pytest.raises(ClientError):
        bad.list_buckets()

    m = _scrape(daemon, token)
    req = "stowage_s3_requests_total"
    assert value(m, req, operation="CreateBucket", status_class="2xx", bucket="") == 1
    assert value(m, req, operation="PutObject", status_class="2xx", bucket="mixed") == 3
    assert value(m, req, operation="GetObject", status_class="2xx", bucket="mixed") == 2
    assert value(m, req, operation="GetObject", status_class="4xx", bucket="mixed") == 1
    assert value(m, req, operation="HeadObject", status_class="2xx", bucket="mixed") == 1
    assert value(m, req, operation="DeleteObject", status_class="2xx", bucket="mixed") == 1
    assert value(m, req, operation="ListObjectsV2", status_class="2xx", bucket="mixed") == 1
    # a bucket that does not exist gets no label of its own
    assert value(m, req, operation="HeadBucket", status_class="4xx", bucket="") == 1
    assert value(m, req, operation="ListBuckets", status_class="4xx", bucket="") == 1
    assert value(m, "stowage_s3_auth_failures_total", code="SignatureDoesNotMatch") == 1
    assert value(m, "stowage_s3_request_duration_seconds_count", operation="PutObject") == 3
    assert value(m, "stowage_s3_request_duration_seconds_bucket", operation="PutObject", le="+Inf") == 3
    assert value(m, "stowage_s3_received_bytes_total", operation="PutObject") == sum(sizes)
    assert value(m, "stowage_s3_sent_bytes_total", operation="GetObject") >= sizes[0] + sizes[1]
    assert value(m, "stowage_s3_requests_in_flight") == 1  # the scrape itself
    # the appliance's own families
    assert value(m, "stowage_bucket_objects", bucket="mixed", storage_class="STANDARD") == 2
    assert value(m, "stowage_bucket_bytes", bucket="mixed", storage_class="STANDARD") == sizes[0] + sizes[1]
    disks = {dict(labels)["disk"] for (name, labels) in m if name == "stowage_disk_state"}
    assert len(disks) == 6
    for disk in disks:
        assert value(m, "stowage_disk_state", disk=disk, pool="default", state="ok") == 1
    writes = sum(v for (name, _), v in m.items() if name == "stowage_disk_writes_total")
    assert writes > 0
    lat = sum(v for (name, labels), v in m.items()
              if name == "stowage_disk_io_latency_seconds_bucket" and dict(labels)["le"] == "+Inf")
    assert lat > 0
    assert value(m, "stowage_journal_write_batch_records_count") > 0
    assert value(m, "stowage_process_resident_memory_bytes") > 10e6
    assert value(m, "stowage_process_open_fds") > 5
    assert value(m, "stowage_heal_backlog_segments") == 0
    assert value(m, "stowage_service_backlog", service="notifications") == 0
    assert ("stowage_event_loop_lag_seconds_count", ()) in m
    # small bodies take nothing from the stream budgets; a 3 MiB body (three blocks) does
    for budget in ("write", "read"):
        assert value(m, "stowage_stream_buffer_limit_bytes", budget=budget) >= 64 << 20
        assert value(m, "stowage_stream_buffer_peak_bytes", budget=budget) == 0
    big = os.urandom(3 << 20)
    s3.put_object(Bucket="mixed", Key="big", Body=big)
    assert s3.get_object(Bucket="mixed", Key="big")["Body"].read() == big
    after = _scrape(daemon, token)
    for budget in ("write", "read"):
        assert value(after, "stowage_stream_buffer_peak_bytes", budget=budget) > 0
        assert value(after, "stowage_stream_buffer_bytes", budget=budget) == 0
    # the Grafana dashboard and the Prometheus rules in docs/ use only names the endpoint serves
    names = {name for name, _ in m} | {"stowage_fuse_operation_duration_seconds_count",
                                       "stowage_fuse_operation_duration_seconds_bucket"}  # no mount here
    for doc in ("grafana-dashboard.json", "prometheus-alerts.yml"):
        used = set(re.findall(r"stowage_[a-z0-9_]+", (REPO / "docs" / doc).read_text()))
        assert used and used <= names, (doc, used - names)


def test_who_may_read_the_metrics(daemon: Any) -> None:
    assert http_get(daemon.endpoint, METRICS)[0] == 401
    assert http_get(daemon.endpoint, METRICS, {"Authorization": "Bearer not-the-token"})[0] == 401
    first = daemon.cli("metrics-token").stdout.strip()
    assert http_get(daemon.endpoint, METRICS, {"Authorization": f"Bearer {first}"})[0] == 200
    second = daemon.cli("metrics-token").stdout.strip()
    assert http_get(daemon.endpoint, METRICS, {"Authorization": f"Bearer {first}"})[0] == 401
    assert http_get(daemon.endpoint, METRICS, {"Authorization": f"Bearer {second}"})[0] == 200
    # a signed request: root may; a user only with stowage:GetMetrics in a policy
    root = signed_headers(daemon.endpoint, METRICS, daemon.access_key, daemon.secret_key)
    assert http_get(daemon.endpoint, METRICS, root)[0] == 200
    wrong = signed_headers(daemon.endpoint, METRICS, daemon.access_key, "wrong-secret")
    assert http_get(daemon.endpoint, METRICS, wrong)[0] == 401
    daemon.cli("user", "add", "watcher")
    key = json.loads(daemon.cli("key", "create", "watcher", "--json").stdout)
    user = signed_headers(daemon.endpoint, METRICS, key["access_key"], key["secret_key"])
    assert http_get(daemon.endpoint, METRICS, user)[0] == 401
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "stowage:GetMetrics", "Resource": "*"}]})
    daemon.cli("policy", "create", "metrics-reader", "-", input=doc)
    daemon.cli("policy", "attach", "metrics-reader", "--user", "watcher")
    user = signed_headers(daemon.endpoint, METRICS, key["access_key"], key["secret_key"])
    assert http_get(daemon.endpoint, METRICS, user)[0] == 200
    # no token in the daemon's log, nor in the audit log
    log = daemon.log_path.read_text() + (daemon.data_dir / "log" / "audit.log").read_text()
    assert first not in log and second not in log and key["secret_key"] not in log


def test_public_metrics_and_an_admin_address(daemon_factory: Any, tmp_path: Any) -> None:
    cfg = tmp_path / "stowage.toml"
    cfg.write_text('[admin]\nmetrics_public = true\nlisten = "127.0.0.1:0"\n')
    d = daemon_factory(["--no-mount", "--config", str(cfg)])
    assert http_get(d.endpoint, METRICS)[0] == 200
    admin = f"http://127.0.0.1:{d.info['admin_port']}"
    status, _, body = http_get(admin, METRICS)
    assert status == 200 and b"stowage_disk_state" in body
    assert http_get(admin, "/_stowage/v1/health/ready")[0] == 200
    assert http_get(admin, "/mixed/key")[0] == 404  # S3 is not served there
    status, headers, _ = http_get(admin, "/")  # the console, at / of the admin address
    assert status == 308 and headers["location"] == "/_stowage/v1/console/"
    status, _, body = http_get(admin, headers["location"])
    assert status == 200 and b"static/app.js" in body


def test_health_endpoints(daemon: Any) -> None:
    status, _, body = http_get(daemon.endpoint, "/_stowage/v1/health/live")
    assert status == 200 and json.loads(body) == {"status": "live"}
    status, _, body = http_get(daemon.endpoint, "/_stowage/v1/health/ready")
    assert status == 200 and json.loads(body) == {"status": "ready"}
    assert http_get(daemon.endpoint, "/_stowage/v1/health/other")[0] == 404
    assert http_get(daemon.endpoint, "/_stowage/v1/nothing")[0] == 404
    assert http_get(daemon.endpoint, "/_stowage/v1/health/live", method="POST")[0] == 405


def test_fuse_operations_are_counted(daemon_factory: Any) -> None:
    import os

    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("no /dev/fuse")
    d = daemon_factory([])
    assert d.mount, d.log_tail()
    token = d.cli("metrics-token").stdout.strip()
    d.s3().create_bucket(Bucket="mnt")
    path = os.path.join(d.mount, "mnt", "f.txt")
    with open(path, "wb") as f:
        f.write(b"through the mount")
    with open(path, "rb") as f:
        assert f.read() == b"through the mount"
    os.listdir(os.path.join(d.mount, "mnt"))
    m = _scrape(d, token)
    for op in ("create", "write", "read", "readdir"):
        assert value(m, "stowage_fuse_operation_duration_seconds_count", operation=op) >= 1, op
    assert value(m, "stowage_fuse_errors_total", operation="lookup") >= 0


def test_packed_small_objects_show_as_volume_bytes(daemon_factory: Any) -> None:
    """A small object's shards (SSE-S3, the default) are records in a volume file on each disk,
    not shard files: stowage_disk_volume_bytes shows them."""
    d = daemon_factory(["--no-mount"])
    token = d.cli("metrics-token").stdout.strip()
    s3 = d.s3()
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="small", Body=b"y" * 5000)
    m = _scrape(d, token)
    disks = {dict(labels)["disk"] for (name, labels) in m if name == "stowage_disk_state"}
    assert len(disks) == 6
    packed = {disk: value(m, "stowage_disk_volume_bytes", disk=disk) for disk in disks}
    assert sum(packed.values()) > 5000  # the data, its parity, and the records' headers
    assert sum(1 for v in packed.values() if v) >= 2  # a record on each disk the segment spans
    assert all(value(m, "stowage_disk_shards", disk=disk) == 0 for disk in disks)
