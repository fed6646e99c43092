"""The durability model against values computed by hand for three configurations, and
`stowage durability` on a real appliance."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from appliance.durability import DiskInput, annual_loss, estimate, estimate_pool, nines, wear_afr


def _disks(n: int, data: int, pool: str = "default", **over: Any) -> list[DiskInput]:
    return [DiskInput(f"d{i}", pool, data_bytes=data, **over) for i in range(n)]


def test_six_disks_four_plus_two() -> None:
    # λ = 0.015/8760 = 1.71233e-6 per hour; R = 0.5 h detection + 3.6e11 B / 1e8 B/s = 1.5 h
    # MTTDL = (1/1.5)^2 / (λ^3 · 6·5·4) = 0.444444 / (5.02070e-18 · 120) = 7.37691e14 h
    # P = 1 - exp(-8760 / 7.37691e14) = 1.18748e-11; nines = -log10(P) = 10.93
    e = estimate_pool("default", 4, 2, _disks(6, int(3.6e11)), 0.015, 1e8)
    assert e.rebuild_hours == pytest.approx(1.5)
    assert e.annual_loss == pytest.approx(1.18748e-11, rel=1e-4)
    assert e.nines == 10.93
    # one more parity disk, 7 disks 4+3: MTTDL = (1/1.5)^3 / (λ^4 · 7·6·5·4) = 4.10297e19 h; P = 2.13502e-16
    assert e.annual_loss_one_more_parity == pytest.approx(2.13502e-16, rel=1e-4)


def test_ten_disks_eight_plus_two_one_with_pending_sectors() -> None:
    # nine disks at AFR 2 %, one with pending sectors (x3): 6 %; mean 2.4 %; λ = 0.024/8760 = 2.73973e-6
    # R = 0.5 + 7.2e11 / 2e8 / 3600 = 1.5 h; MTTDL = (1/1.5)^2 / (λ^3 · 10·9·8) = 3.00167e13 h
    # P = 1 - exp(-8760 / 3.00167e13) = 2.91837e-10; nines 9.53
    disks = [*_disks(9, int(7.2e11)), DiskInput("worn", "default", data_bytes=int(7.2e11),
                                                errors={"pending_sectors": 8})]
    e = estimate_pool("default", 8, 2, disks, 0.02, 2e8)
    assert e.afr_mean == pytest.approx(0.024)
    assert e.annual_loss == pytest.approx(2.91837e-10, rel=1e-4)
    assert e.nines == 9.53
    assert e.disk_rates[-1].reasons == ["pending sectors 8: x3"]


def test_four_disks_two_plus_two_one_failed() -> None:
    # one of four disks failed: three left, one failure to spare (m - 1 = 1); AFR 3 %
    # R = 0.5 + 1.8e12 / 1e8 / 3600 = 5.5 h; MTTDL = (1/5.5) / ((0.03/8760)^2 · 3·2) = 2.58376e9 h
    # P = 1 - exp(-8760 / 2.58376e9) = 3.39041e-6; nines 5.47
    disks = [*_disks(3, int(1.8e12)), DiskInput("gone", "default", state="failed", data_bytes=int(1.8e12))]
    e = estimate_pool("default", 2, 2, disks, 0.03, 1e8)
    assert (e.failed, e.rebuild_hours) == (1, pytest.approx(5.5))
    assert e.annual_loss == pytest.approx(3.39041e-6, rel=1e-4)
    assert e.nines == 5.47


def test_model_edges_and_wear() -> None:
    assert annual_loss(3, -1, 0.02, 1.0) == 1.0  # more disks gone than parity: data is lost
    assert annual_loss(2, 2, 0.02, 1.0) == 0.0  # cannot lose m+1 of n < m+1 disks
    assert nines(0.0) == math.inf and nines(1e-3) == 3.0
    r = wear_afr(0.01, DiskInput("d", "p", state="failing", errors={"reallocated_sectors": 3, "media_errors": 0},
                                 power_on_hours=50000))
    assert r.afr == pytest.approx(0.01 * 2 * 1.5 * 10)
    assert len(r.reasons) == 3
    both = estimate([("a", 4, 2, _disks(6, int(3.6e11), "a")), ("b", 2, 2, _disks(4, int(3.6e11), "b"))],
                    0.015, 1e8, "configured", replication_sites=1)
    pa, pb = (p.annual_loss for p in both.pools)
    assert both.annual_loss == pytest.approx(1 - (1 - pa) * (1 - pb))
    assert both.annual_loss_with_replication is not None and both.annual_loss_with_replication < both.annual_loss


def test_durability_command(daemon: Any) -> None:
    s3 = daemon.s3()
    s3.create_bucket(Bucket="dur")
    s3.put_object(Bucket="dur", Key="k", Body=b"x" * (3 << 20))
    doc = json.loads(daemon.cli("durability", "--json", "--measure").stdout)
    assert doc["rebuild_source"] == "measured" and doc["rebuild_bytes_per_sec"] > 0
    [pool] = doc["pools"]
    assert (pool["disks"], pool["k"], pool["m"], pool["failed"]) == (6, 4, 2, 0)
    assert 0 < doc["annual_loss"] < 1e-6 and doc["nines"] > 6
    assert doc["annual_loss_one_more_parity"] < doc["annual_loss"]
    text = daemon.cli("durability").stdout
    assert "nines" in text and "docs/durability.md" in text
