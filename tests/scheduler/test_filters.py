"""The filter table (`scheduler.filters`) is the one list of placement filters: the compiled
scan applies them in its order, and the explain texts are its reasons."""

from __future__ import annotations

import ast
import inspect
import textwrap

from tests.builders import host, policy, snap, vm
from ulm.scheduler import filters, scan
from ulm.scheduler.core import schedule


def _chain_order() -> list[str]:
    """The reason codes the scan's `if/elif` chain assigns to `why`, in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(scan._scan.py_func)))
    found = sorted((n.lineno, n.value.id) for n in ast.walk(tree)
                   if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name)
                   and any(isinstance(t, ast.Name) and t.id == "why" for t in n.targets))
    out: list[str] = []
    for _, name in found:
        if name != "PASS" and (not out or out[-1] != name):  # OVERLOAD has three branches
            out.append(name)
    return out


def test_the_scan_applies_the_filters_in_the_tables_order() -> None:
    assert _chain_order() == [f.name for f in filters.FILTERS]
    assert [getattr(scan, f.name) for f in filters.FILTERS] == list(range(filters.N_REASONS))


def test_the_explain_texts_are_the_tables_reasons() -> None:
    assert len(set(filters.REASONS)) == len(filters.FILTERS)  # one text per filter
    # a host rejected by the first filter it fails, named by the table's text
    plan = schedule(snap([host("h1"), host("h2", cpu=1.0)],
                         [vm("big", "h1", 6.0, size=8), vm("rest", "h1", 3.0, migratable=False)]),
                    policy("[overload]\nthreshold = 0.8\nsustain = 1\nwindow = 1\n"), 0.0)
    row = next(d for d in plan.decisions if d.vm == "big")
    assert set(row.rejections) <= set(filters.REASONS)
    assert row.rejections == {filters.REASONS[filters.EXCLUDED]: 1,  # its own host
                              filters.REASONS[filters.CPU]: 1}
