"""`python -m ulm.warm`: compiles every compiled kernel into numba's cache, once after an install.

The scheduler's placement scan and the simulator's accounting are compiled with numba on first
use (~30 s on a 2-core machine) and loaded from the cache after that (a fraction of a second).
`scripts/setup.sh` runs this so that the first `ulm` command an admin types is not the one that
waits. The cache is keyed on the kernels' sources and numba's version (`ulm.jit`), so after an
edit or an upgrade this compiles afresh instead of serving old code.
"""

from __future__ import annotations

import time

from ulm import jit
from ulm.sim.engine import load_compiled_sim


def main() -> None:
    t0 = time.perf_counter()
    load_compiled_sim()
    where = jit.CACHE_DIR or "nowhere: no writable cache directory, compiled in memory"
    print(f"ulm.warm: compiled code ready in {time.perf_counter() - t0:.1f} s (cache: {where})")


if __name__ == "__main__":
    main()
