"""Storing a plan: an enforced or maintenance plan is a new row; an advised one either keeps
the advice already waiting (the same actions: `ulm.advice`) or supersedes it."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ulm import advice
from ulm.model import Plan
from ulm.store import schema as t


def save(c: Connection, plan: Plan, mode: str) -> str:
    """The plan's id, in the caller's transaction. Advice with the same actions as the
    newest proposed advised plan refreshes that row (its figures, `seen_at`, snapshot id;
    its id, status and actions' order stay) and returns its id; any other advice (another
    policy's too) supersedes every proposed plan and is a new row. The row is refreshed only
    while it is still proposed: one an operator began to apply meanwhile stays as it is and
    this advice is a new row."""
    body = plan.to_dict()
    if mode == "advise":
        kept = _keep(c, plan, body)
        if kept is not None:
            return kept
        withdraw(c)
    plan_id = f"p-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(plan.created_at))}-" \
              f"{uuid.uuid4().hex[:6]}"
    c.execute(insert(t.plans).values(
        id=plan_id, created_at=plan.created_at, snapshot_id=plan.snapshot_id,
        policy_digest=plan.policy_digest, mode=mode,
        status="proposed" if mode == "advise" else "running", body=body))
    return plan_id


def _keep(c: Connection, plan: Plan, body: dict[str, Any]) -> str | None:
    p = t.plans.c
    newest = (select(p.id).where(p.status == "proposed", p.mode == "advise")
              .order_by(p.created_at.desc(), p.id.desc()).limit(1).scalar_subquery())
    # A write first, so that the transaction holds the write lock before it reads (SQLite
    # would refuse a read transaction's late upgrade if another writer came in between):
    # older advice still proposed (a store written before advice was kept) goes as before.
    c.execute(update(t.plans).where(p.status == "proposed", p.id != newest)
              .values(status="superseded"))
    current = c.execute(select(t.plans).where(p.id == newest)).first()
    if current is None or current.policy_digest != plan.policy_digest \
            or not advice.same_actions(current.body["actions"], body["actions"]):
        return None
    done = c.execute(update(t.plans).where(p.id == current.id, p.status == "proposed").values(
        snapshot_id=plan.snapshot_id,
        body=advice.refreshed(current.body, body, plan.created_at)))
    return str(current.id) if done.rowcount == 1 else None


def withdraw(c: Connection) -> int:
    """Every proposed plan superseded: how many."""
    return int(c.execute(update(t.plans).where(t.plans.c.status == "proposed")
                         .values(status="superseded")).rowcount)
