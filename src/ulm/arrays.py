"""Array type aliases. The name says the dtype a column holds; the checker only checks that it
is an ndarray, because numpy types comparisons and reductions as Any, and dtype-precise aliases
would drown the code in casts without catching real mistakes."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

F64 = NDArray[Any]  # float64
I64 = NDArray[Any]  # int64
B = NDArray[Any]  # bool
