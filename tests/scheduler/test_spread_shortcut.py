"""The IQR / MAD shortcut (`scan._decided`): where the window's range decides the verdict, it
is the verdict the full spread gives, to the bit (the compat and honest tables depend on it)."""

from __future__ import annotations

import numpy as np

from ulm.scheduler.limits import exceeds
from ulm.scheduler.scan import _decided, _spread


def test_shortcut_agrees_with_the_spread() -> None:
    rng = np.random.default_rng(7)
    decided = {0: 0, 1: 0}
    for trial in range(4000):
        width = 30
        length = int(rng.integers(1, width + 1))
        # loads near the limit and exact repeats (nice numbers), where rounding matters
        row = rng.choice([0.25, 0.5, 0.75, 0.8, 1.0 / 3], width) if trial % 2 else rng.random(width)
        row[: width - length] = 0.0
        detector = 3 if trial % 3 else 4
        safety = float(rng.choice([1.5, 2.5, 0.5]))
        cap = float(rng.choice([1860.0, 2660.0]))
        used = float(rng.random() * 1.2 * cap)
        window = row[width - length:]
        verdict = _decided(used, cap, float(window.min()), float(window.max()), True, length,
                           width, detector, safety, 0.0)
        full = exceeds(used, cap, 1.0 - safety * _spread(row.copy(), length, detector), 0.0)
        if verdict >= 0:
            assert (verdict == 1) == full, (row, length, detector, safety, used, cap)
            decided[verdict] += 1
    assert decided[0] > 0 and decided[1] > 0  # the shortcut is taken both ways


def test_shortcut_declines_what_it_cannot_decide() -> None:
    # not finite, an empty window, and IQR's upper quartile index past a one-sample window
    assert _decided(0.1, 1.0, 0.0, 0.1, False, 10, 30, 3, 1.5, 0.0) == -1
    assert _decided(0.1, 1.0, 0.0, 0.1, True, 0, 30, 4, 1.5, 0.0) == -1
    assert _decided(0.1, 1.0, 0.5, 0.5, True, 1, 30, 3, 1.5, 0.0) == -1
