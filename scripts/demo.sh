#!/usr/bin/env bash
# ULM's main job on a real (local) cluster: a 3-host libvirt lab with a few guests; one host gets
# hot; `ulm run --mode enforce` relieves it by live-migrating its hungriest VM; before/after and
# the decision are shown; the lab is torn down. Needs root (network namespaces, libvirtd).
set -euo pipefail
cd "$(dirname "$0")/.."
ulm=$PWD/.venv/bin/ulm
work=$(mktemp -d /tmp/ulm-demo.XXXXXX)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { "$ulm" lab down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step "1. A lab of three libvirtd hosts (network namespaces, TCP libvirt, munin-node each)"
"$ulm" lab down >/dev/null 2>&1 || true
"$ulm" lab up --hosts 3

step "2. Guests: web1 (busy Linux), cache1 (idle) on labh1; db1 (idle) on labh2"
"$ulm" lab vm add web1 --host labh1 --mem 128 --burn 1
"$ulm" lab vm add cache1 --host labh1 --mem 64 --kind idle
"$ulm" lab vm add db1 --host labh2 --mem 96 --kind idle

step "3. ULM's configuration for the lab, with the original design's policy (seed)"
"$ulm" lab config > "$work/ulm.toml"
sed -i "s#sqlite:///.*ulm.db#sqlite:///$work/ulm.db#; s#interval_s = 3#interval_s = 3\nwindow = 6#" \
    "$work/ulm.toml"
"$ulm" policy check seed | head -12
"$ulm" lab status

step "4. labh1 gets hot: its CPU reads 90 % (libvirt and munin both see it)"
"$ulm" lab load labh1 90

step "5. ulm run --mode enforce: over 75 % in 3 of the last 4 samples -> relieve labh1"
"$ulm" lab exec -- "$ulm" run --config "$work/ulm.toml" --mode enforce --rounds 3
"$ulm" lab load labh1 auto   # the hot spot is gone with its VM

step "6. After: web1 runs on another host, live (no restart)"
"$ulm" lab status
"$ulm" status --config "$work/ulm.toml"

step "7. Why: the plan, its decision table and what happened"
"$ulm" explain --config "$work/ulm.toml"

step "8. Tear down: every process, namespace, cgroup and route of the lab removed"
"$ulm" lab down
trap - EXIT
rm -rf "$work"
