"""Turns a plan's actions into stages: wake first, then migrations in waves, then power-off.

A wave holds at most `per_host` migrations touching any one host (a migration loads both its
source and its destination) and at most `total` migrations in all, filled in plan order.
"""

from __future__ import annotations

from collections import Counter

from ulm.model import Action, Move, PowerOff, PowerOn


def stages(actions: tuple[Action, ...], per_host: int = 1,
           total: int | None = None) -> list[list[Action]]:
    wake = [a for a in actions if isinstance(a, PowerOn)]
    moves = [a for a in actions if isinstance(a, Move)]
    off = [a for a in actions if isinstance(a, PowerOff)]
    out: list[list[Action]] = [list(wake)] if wake else []
    pending = list(moves)
    while pending:
        wave: list[Action] = []
        load: Counter[str] = Counter()
        rest: list[Move] = []
        for m in pending:
            full = total is not None and len(wave) >= total
            if full or load[m.src] >= per_host or load[m.dst] >= per_host:
                rest.append(m)
                continue
            wave.append(m)
            load[m.src] += 1
            load[m.dst] += 1
        out.append(wave)
        pending = rest
    if off:
        out.append(list(off))
    return out
