"""The ULM process the fault campaign kills, stops or starves: one plan run by the real
executor, journalled in a real store, from inside the lab's controller namespace.

    nsenter --net=... python -m benchmarks.fault_worker --store URL --plan JSON [--recover]

`--plan` is a JSON list of actions as the store writes them (`[[kind, payload], ...]`); the
plan is saved in the store (so its outcome rows have a plan to belong to) and executed, with
the power drivers `ulm lab config` writes for the lab's BMCs. SIGTERM does what `ulm run`'s
handler does: start nothing new, give the migration in flight the shutdown grace, then abort
it. `--recover` is the restart after a crash: a new executor on the same store, `recover()`.
The last stdout line is one JSON object: the plan id and the outcomes.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ulm.clock import WallClock
from ulm.config import load_config
from ulm.drivers.base import Power
from ulm.drivers.libvirt import LibvirtHypervisor
from ulm.executor import Executor, Limits
from ulm.lab.lab import Lab
from ulm.model import Plan
from ulm.power.factory import driver
from ulm.store import Store
from ulm.store.records import action


def answers(uri: str) -> bool:
    import libvirt

    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def build(store: Store, limits: Limits) -> tuple[Executor, LibvirtHypervisor]:
    lab = Lab()
    path = lab.paths.root / "fault-worker.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path)
    uris = {h.name: h.libvirt_uri for h in cfg.hosts}
    hv = LibvirtHypervisor(uris, uris, timeout_s=5.0, keepalive_s=2, keepalive_count=2)
    power: dict[str, Power] = {}
    for h in cfg.hosts:
        if h.power is not None:
            power[h.name] = driver(h.power, lambda u=uris[h.name]: answers(u), h.name)
    return Executor(hv, WallClock(), store, limits, power=power), hv


def main() -> None:
    import libvirt

    libvirt.registerErrorHandler(lambda *a: None, None)
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--plan", default="[]")
    ap.add_argument("--limits", default="{}", help="JSON: Limits fields")
    ap.add_argument("--recover", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    limits = Limits(**json.loads(args.limits))
    store = Store.open(args.store, mode="create")
    ex, hv = build(store, limits)
    result: dict[str, Any] = {}
    try:
        if args.recover:
            result["outcomes"] = [[o.status.value, o.detail] for o in ex.recover()]
        else:
            plan = Plan("s", "p", 0.0, tuple(action(k, p) for k, p in json.loads(args.plan)))
            plan_id = store.save_plan(plan, "enforce")
            print(json.dumps({"plan_id": plan_id}), flush=True)

            def term(signum: int, frame: FrameType | None) -> None:
                logging.getLogger("ulm").info("signal %d: finishing in-flight work, then "
                                              "stopping", signum)
                ex.request_stop()

            signal.signal(signal.SIGTERM, term)
            res = ex.execute(plan, plan_id)
            result.update(plan_id=plan_id,
                          outcomes=[[o.status.value, o.detail] for o in res.outcomes])
    finally:
        hv.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
