#!/usr/bin/env bash
# ULM's main job on a real (local) cluster: a 3-host libvirt lab with a few guests; one host gets
# hot because its guests really burn CPU; `ulm run --mode enforce` relieves it by live-migrating
# its hungriest VM while its dashboard shows it live in a browser; before/after and the decision
# are shown; the lab is torn down. Needs root (network namespaces, libvirtd).
#   DEMO_PORT    the dashboard's port on this machine's 127.0.0.1 (default 8765)
#   DEMO_ROUNDS  rounds of 3 s the daemon runs (default 10: time to look at the dashboard)
set -euo pipefail
cd "$(dirname "$0")/.."
ulm=$PWD/.venv/bin/ulm
work=$(mktemp -d /tmp/ulm-demo.XXXXXX)
port=${DEMO_PORT:-8765}
rounds=${DEMO_ROUNDS:-10}
forward=""
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  if [ -n "$forward" ]; then kill "$forward" 2>/dev/null || true; fi
  "$ulm" lab down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "1. A lab of three libvirtd hosts (network namespaces, TCP libvirt, munin-node each)"
"$ulm" lab down >/dev/null 2>&1 || true
"$ulm" lab up --hosts 3

step "2. Guests: web1 and web2 (Linux, idle for now) on labh1; db1 (idle) on labh2"
"$ulm" lab vm add web1 --host labh1 --mem 128
"$ulm" lab vm add web2 --host labh1 --mem 128
"$ulm" lab vm add db1 --host labh2 --mem 96 --kind idle
for vm in web1 web2; do  # booted: their init reads its control port now
  for _ in $(seq 60); do
    grep -qs "LABGUEST READY" "/var/lib/ulm-lab/h1/var-up/log/libvirt/qemu/$vm.serial" && break
    sleep 1
  done
done

step "3. ULM's configuration for the lab (the original design's policy, seed) and a login token"
"$ulm" lab config > "$work/ulm.toml"
sed -i "s#sqlite:///.*ulm.db#sqlite:///$work/ulm.db#; s#interval_s = 3#interval_s = 3\nwindow = 6#" \
    "$work/ulm.toml"
token=$("$PWD/.venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
(umask 077 && printf '%s\n' "$token" > "$work/operator.token")
printf '\n[[api.tokens]]\nname = "demo"\nrole = "operator"\ntoken_file = "%s"\n' \
    "$work/operator.token" >> "$work/ulm.toml"
"$ulm" policy check seed | head -12
"$ulm" lab status

step "4. labh1 gets hot the honest way: web1 and web2 really burn CPU (a busy loop each)"
"$ulm" lab load labh1 --burn 1
sleep 4
"$ulm" lab status

step "5. ulm run --mode enforce, with its dashboard: labh1 over 75 % in 3 of 4 samples -> relieve it"
"$PWD/.venv/bin/python" -m ulm.lab.forward "$port" &  # this machine's 127.0.0.1 -> labctl's
forward=$!
"$ulm" lab exec -- "$ulm" run --config "$work/ulm.toml" --mode enforce --rounds "$rounds" \
    --http "127.0.0.1:$port" &
daemon=$!
for _ in $(seq 60); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/api/v1/openapi.json" && break
  sleep 0.5
done
printf '\n  \033[1mWatch it in the browser\033[0m while the daemon runs (%s rounds of 3 s):\n' \
    "$rounds"
printf '  dashboard:  http://127.0.0.1:%s/\n' "$port"
printf '  log in:     http://127.0.0.1:%s/login?token=%s\n\n' "$port" "$token"
wait "$daemon"
kill "$forward" 2>/dev/null || true
forward=""

step "6. After: the hungriest VM runs on another host, live (no restart), and burns there"
"$ulm" lab status
"$ulm" status --config "$work/ulm.toml"
for h in labh1 labh2 labh3; do "$ulm" lab load "$h" --burn 0 >/dev/null 2>&1 || true; done

step "7. Why: the plan, its decision table and what happened"
"$ulm" explain --config "$work/ulm.toml"

step "8. Tear down: every process, namespace, cgroup and route of the lab removed"
"$ulm" lab down
trap - EXIT
rm -rf "$work"
