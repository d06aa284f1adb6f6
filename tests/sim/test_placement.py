"""SimCluster's placement index: `list_vms` answers from it, so every change must keep it."""

from __future__ import annotations

from ulm.clock import SimClock
from ulm.drivers.base import MigrationOptions
from ulm.drivers.sim import Placement, SimCluster, SimPower


def _scan(placement: dict[str, str], host: str) -> list[str]:
    return sorted(v for v, h in placement.items() if h == host)


def test_every_change_keeps_list_vms_equal_to_a_scan() -> None:
    clock = SimClock(0.0)
    cluster = SimCluster(clock, {"a": "h1", "b": "h1", "c": "h2"}, bandwidth_mib_s=1e6)
    assert isinstance(cluster.placement, Placement)
    p = cluster.placement
    p["d"] = "h3"
    p["a"] = "h2"  # moved
    del p["b"]
    assert p.pop("zz", None) is None and p.pop("c") == "h2"
    p.update({"e": "h1"}, f="h3")
    p.setdefault("e", "h9")
    p |= {"g": "h1"}
    for h in ("h1", "h2", "h3", "h9"):
        assert cluster.list_vms(h) == _scan(dict(p), h)
    job = cluster.start_migration("a", "h2", "h1", MigrationOptions())
    clock.advance_to(10.0)
    cluster.poll(job)
    assert cluster.list_vms("h1") == ["a", "e", "g"] and cluster.list_vms("h2") == []
    SimPower(cluster, "h3").power_off()  # its VMs go down with it
    assert "d" not in p and "f" not in p and cluster.list_vms("h3") == []
    cluster.placement = {"x": "h1"}  # a new placement is indexed too
    assert cluster.list_vms("h1") == ["x"]
    p.clear()
    assert not p and list(p.on("h1")) == []
