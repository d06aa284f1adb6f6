#!/usr/bin/env bash
# Refreshes docs/screenshots/: the dashboard's pages as the browser tests see them (every
# browser test saves its screenshots in its tmp dir; ULM_SCREENSHOTS=DIR copies them to DIR).
#   bash scripts/screenshots.sh         dashboard-*.png: the simulated cluster (tests/api/test_browser.py)
#   bash scripts/screenshots.sh --lab   lab-*.png too: the real lab (tests/lab/test_dashboard_lab.py; root, minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export ULM_SCREENSHOTS="$PWD/docs/screenshots"
tests=(tests/api/test_browser.py)
if [[ "${1:-}" == "--lab" ]]; then
    tests+=(tests/lab/test_dashboard_lab.py)
elif [[ -n "${1:-}" ]]; then
    echo "usage: bash scripts/screenshots.sh [--lab]" >&2
    exit 2
fi
exec "${PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider "${tests[@]}"
