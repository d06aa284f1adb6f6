"""A host's chart series over a long range: bucket means, at most 1,000 points, computed by
hand here; `since` checked at the edge. The real server on its SQLite store; 30 days of h3's
samples written into that store first (one every 864 s: 3,000 rows, three a bucket)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tests.api.conftest import Server
from ulm.store import Store
from ulm.store import schema as t

DAYS_30 = 30 * 86400.0
WIDTH = DAYS_30 / 1000  # 2,592 s: three of the samples below in each bucket


def _fill(server: Server, now: float) -> None:
    since = now - DAYS_30
    store = Store.open(f"sqlite:///{server.dir}/ulm.db", mode="create")
    try:
        with store.engine.begin() as c:
            c.execute(insert(t.samples), [
                {"ts": since + 100 + 864 * i, "kind": "host", "name": "h3", "host": "h3",
                 "cpu": (i % 3) * 0.25, "mem_mib": 1000.0 + (i % 3) * 600, "resolution_s": 0.0,
                 "source": "test"} for i in range(3000)])
    finally:
        store.close()


def test_thirty_days_come_back_as_1000_bucket_means(shared: Server) -> None:
    with shared.client("viewer") as c:
        now = c.get("/api/v1/overview").json()["now"]  # the server's (simulated) clock
        _fill(shared, now)
        cpu = c.get("/api/v1/hosts/h3/cpu", params={"since": "-30d"}).json()
        mem = c.get("/api/v1/hosts/h3/mem", params={"since": "-30d"}).json()
        hour = c.get("/api/v1/hosts/h3/cpu", params={"since": "-1h"}).json()
    since = now - DAYS_30
    assert len(cpu["ts"]) == len(cpu["cpu"]) == 1000  # 3,005 rows, one point a bucket
    # bucket k: samples 3k, 3k+1, 3k+2 at since + 2592k + 100, +964, +1828, CPU 0, 0.25, 0.5;
    # the last bucket also has the daemon's own five samples of h3: left out
    for k in (0, 1, 500, 998):
        assert cpu["ts"][k] == pytest.approx(since + WIDTH * k + 964)
        assert cpu["cpu"][k] == pytest.approx(0.25)
        assert mem["mem_mib"][k] == pytest.approx(1600.0)  # (1000 + 1600 + 2200) / 3
        assert mem["mem"][k] == pytest.approx(1600.0 / 16384)
    # an hour: the daemon's samples (a minute apart, in 3.6 s buckets) as they are, with
    # the month's four of that hour, nothing older
    assert [x for x in hour["ts"] if x < now - 3600] == []
    assert len(hour["ts"]) == 5 + sum(1 for i in range(3000)
                                      if since + 100 + 864 * i >= now - 3600)


@pytest.mark.parametrize("since", ["nan", "inf", "-inf", "1e300", "0", "tomorrow", "+1h",
                                   "now", "-1x"])
def test_a_since_that_is_no_time_before_now_is_422(shared: Server, since: str) -> None:
    with shared.client("viewer") as c:
        for figure in ("cpu", "mem"):
            r = c.get(f"/api/v1/hosts/h1/{figure}", params={"since": since})
            assert r.status_code == 422, (figure, since, r.text)
            assert list(r.json()) == ["error"] and "query.since" in r.json()["error"]
