#!/usr/bin/env bash
# ULM's main job, demonstrated: the scheduler explains what it would do with a hot host, a quiet
# night and a host going into maintenance.
set -euo pipefail
cd "$(dirname "$0")/.."
ulm=.venv/bin/ulm
for case in "hot-host seed" "night power-save" "maintenance seed"; do
    set -- $case
    echo
    echo "=== snapshot examples/snapshots/$1.json under policy $2 ==="
    "$ulm" plan --snapshot "examples/snapshots/$1.json" --policy "$2"
done
