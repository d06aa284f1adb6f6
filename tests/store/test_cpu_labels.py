"""What libvirt says of CPUs and VM labels is stored and reaches every snapshot (and `ulm
status`'s JSON); a round from a source that does not read them leaves them as they were.
Real SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

from ulm.collect.base import Collection, HostReading, VMReading
from ulm.snapshot_json import snapshot_to_dict
from ulm.store import Store

FEATS = frozenset({"avx2", "aes", "sse4_2"})


def _round(ts: float, details: bool, labels: dict[str, str] | None = None) -> Collection:
    extra_h = {"cpu_model": "Skylake-Server", "cpu_features": FEATS} if details else {}
    extra_v = {"labels": labels if labels is not None else {"tier": "web"},
               "cpu_features": frozenset({"avx2"})} if details else {}
    return Collection(ts, (HostReading("h1", ts, True, "", 8, 16384.0, 0.2, 1024.0,
                                       source="libvirt", **extra_h),),
                      (VMReading("a", "h1", ts, 2, 1024.0, 0.1, 512.0,
                                 **extra_v),))


def test_cpu_and_labels_are_stored_and_kept_by_rounds_that_do_not_read_them(
        store: Store) -> None:
    store.add_collection(_round(100.0, True))
    store.add_collection(_round(110.0, False))  # e.g. Prometheus as the source: no XML
    snap = store.snapshot(115.0, 4, 60.0)
    (h,), (v,) = snap.hosts, snap.vms
    assert h.cpu_model == "Skylake-Server" and h.cpu_features == FEATS
    assert dict(v.labels) == {"tier": "web"} and v.cpu_features == frozenset({"avx2"})
    doc = snapshot_to_dict(snap)  # what `ulm status --format json` prints
    assert doc["vms"][0]["labels"] == {"tier": "web"}
    assert doc["hosts"][0]["cpu_features"] == sorted(FEATS)
    store.add_collection(_round(120.0, True, labels={}))  # the label was removed
    snap = store.snapshot(125.0, 4, 60.0)
    assert dict(snap.vms[0].labels) == {} and snap.vms[0].cpu_features == frozenset({"avx2"})


def test_a_vm_read_twice_in_a_round_keeps_the_copy_that_said_its_labels(store: Store) -> None:
    ts = 100.0
    both = Collection(ts, (HostReading("h1", ts, True, "", 8, 16384.0, source="libvirt"),
                           HostReading("h2", ts, True, "", 8, 16384.0, source="libvirt")),
                      (VMReading("a", "h1", ts, 2, 1024.0, labels={"k": "v"},
                                 cpu_features=frozenset({"aes"})),
                       VMReading("a", "h2", ts, 2, 1024.0)))
    store.add_collection(both)
    (v,) = store.snapshot(105.0, 4, 60.0).vms
    assert v.host == "h2" and dict(v.labels) == {"k": "v"} and v.cpu_features == {"aes"}


def test_the_snapshot_decodes_json_columns_as_the_json_type_does(store: Store) -> None:
    """`rowread.read_rows` reads labels and CPU features as text and decodes each distinct
    text once: every row equals SQLAlchemy's own JSON decoding of it, and VMs that share a
    text do not share a change of one of them."""
    from sqlalchemy import select

    from ulm.store import schema as t
    from ulm.store.rowread import read_rows
    from ulm.store.rows import VMRow

    ts = 100.0
    labels = [{"tier": "web"}, {}, {"tier": "web"}, {"zone": "ü-1", "tier": "db"}, {}]
    feats = [frozenset({"avx2"}), frozenset(), frozenset({"avx2"}), FEATS, frozenset()]
    pairs = list(zip(labels, feats, strict=True))
    vms = tuple(VMReading(f"v{i}", "h1", ts, 1, 256.0, 0.1, 128.0, labels=lab,
                          cpu_features=f) for i, (lab, f) in enumerate(pairs))
    store.add_collection(Collection(ts, (HostReading("h1", ts, True, "", 8, 16384.0,
                                                     source="libvirt", cpu_features=FEATS),),
                                    vms))
    fields = list(VMRow.__dataclass_fields__)
    with store.engine.connect() as c:
        ours = read_rows(c, t.vms, VMRow, fields)
        theirs = [VMRow(*r) for r in c.execute(select(*(t.vms.c[f] for f in fields)))]
    assert sorted(ours, key=lambda r: r.name) == sorted(theirs, key=lambda r: r.name)
    snap = store.snapshot(105.0, 4, 60.0)
    got = {v.name: (dict(v.labels), v.cpu_features) for v in snap.vms}
    assert got == {f"v{i}": (lab, f) for i, (lab, f) in enumerate(pairs)}
    changed = (VMReading("v0", "h1", ts + 10, 1, 256.0, 0.1, 128.0, labels={"tier": "app"},
                         cpu_features=frozenset({"aes"})),)
    store.add_collection(Collection(ts + 10, (), changed))
    again = {v.name: (dict(v.labels), v.cpu_features) for v in store.snapshot(115.0, 4, 60.0).vms}
    assert again["v0"] == ({"tier": "app"}, frozenset({"aes"}))
    assert again["v2"] == ({"tier": "web"}, frozenset({"avx2"}))  # its old twin is untouched
