"""The rule that keeps an advised plan: the same actions in any order; an empty or different
advice is not the same; the kept body has the old order with the new figures."""

from __future__ import annotations

from dataclasses import asdict

from ulm.advice import refreshed, same_actions, seen_at
from ulm.model import Move, PowerOff, PowerOn


def _d(*actions: object) -> list[dict]:  # type: ignore[type-arg]
    return [asdict(a) for a in actions]  # type: ignore[call-overload]


def test_the_same_moves_in_any_order_are_the_same_advice() -> None:
    old = _d(Move("a", "h1", "h2", "hot", 512.0), PowerOff("h1", "empty"))
    assert same_actions(old, _d(PowerOff("h1", "still empty"), Move("a", "h1", "h2", "x", 9.0)))
    assert not same_actions(old, _d(Move("a", "h1", "h3", "hot"), PowerOff("h1", "empty")))
    assert not same_actions(old, _d(Move("a", "h1", "h2", "hot")))  # one action fewer
    assert not same_actions(old, _d(Move("a", "h1", "h2", "hot"), PowerOn("h1", "wake")))
    assert not same_actions(old, _d(Move("a", "h1", "h2", "hot"), Move("a", "h1", "h2", "hot")))
    assert not same_actions([], [])  # no advice is never kept


def test_the_kept_body_has_the_old_order_and_the_new_figures() -> None:
    old = {"created_at": 100.0, "actions": _d(Move("a", "h1", "h2", "r1"),
                                               Move("b", "h1", "h3", "r1"))}
    new = {"created_at": 160.0, "problems": ["p"], "loads": {"h1": 1},
           "actions": _d(Move("b", "h1", "h3", "r2"), Move("a", "h1", "h2", "r2"))}
    body = refreshed(old, new, 160.0)
    assert [(a["vm"], a["reason"]) for a in body["actions"]] == [("a", "r2"), ("b", "r2")]
    assert body["created_at"] == 100.0 and body["problems"] == ["p"] and body["loads"] == {"h1": 1}
    assert seen_at(body, 100.0) == 160.0 and seen_at(old, 100.0) == 100.0
