"""The test suite's secrets: every test that puts a credential anywhere uses one of these, and
the session hook in conftest.py fails the run if any of them shows up in any test's output."""

from __future__ import annotations

STORE_PW = "St0re-pw-ULMTEST-41c9"
BMC_PW = "Bmc-pw-ULMTEST-77e2"
TOKEN = "tok-ULMTEST-0b5d9e"

ALL = (STORE_PW, BMC_PW, TOKEN)
