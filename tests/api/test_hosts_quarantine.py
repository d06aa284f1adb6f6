"""The hosts route and page show the guard's quarantine (`hosts.quarantine` in the store), as
`ulm status` does: an admin must see why ULM keeps away from a host."""

from __future__ import annotations

import time

from tests.api.conftest import TOKENS, Server
from ulm.collect.base import Collection, HostReading
from ulm.store import Store

WHY = "reported CPU 500% of its cores (limit 110%)"


def test_a_quarantined_host_says_why_in_the_route_and_on_the_page(fresh: Server) -> None:
    store = Store.open(f"sqlite:///{fresh.dir}/ulm.db", mode="create")
    try:  # the daemon's next round, as its guard screened it: h2's figures disbelieved
        ts = max(s.ts for s in store.host_samples(0.0))
        store.add_collection(Collection(ts, (HostReading(
            "h2", ts, True, cores=4, mem_total_mib=16384.0, source="libvirt",
            quarantine=WHY),)))
    finally:
        store.close()
    with fresh.client("viewer") as c:
        hosts = {h["name"]: h for h in c.get("/api/v1/hosts").json()}
    assert hosts["h2"]["quarantine"] == WHY
    assert hosts["h1"]["quarantine"] == hosts["h3"]["quarantine"] == ""
    with fresh.client() as c:
        assert c.post("/login", data={"token": TOKENS["viewer"]}).status_code == 303
        page = c.get("/hosts").text
    assert page.count("quarantined: ") == 1
    assert f"quarantined: {WHY}" in page.split('id="host-h2"')[1].split('id="host-h3"')[0]
    time.sleep(0.2)  # let the server write its last log lines before the leak check
