"""`schedule` pauses Python's cycle collector for the call and leaves it as it found it."""

from __future__ import annotations

import gc

import pytest

from ulm.scheduler.quiet import collector_paused


def test_the_last_one_out_resumes_the_collector_even_after_an_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with pytest.raises(ValueError), collector_paused():
            raise ValueError("a plan that failed")
        assert not gc.isenabled()  # the outer call is still inside
    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
