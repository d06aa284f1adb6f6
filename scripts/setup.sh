#!/usr/bin/env bash
# Sets ULM up on a fresh Debian 12 machine, as root: Debian packages, a virtualenv in .venv and
# ULM itself (editable). Idempotent: a second run only checks what is there.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    plus test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras="lab"
for arg in "$@"; do
    case "$arg" in
        --dev) extras="lab,dev" ;;
        *) echo "setup.sh: unknown argument '$arg' (expected --dev)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 2
fi

# Debian packages. The list lives in one file so that `ulm lab setup` and CI agree.
pkgs=$(grep -v '^#' scripts/debian-packages.txt | tr '\n' ' ')
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null
fi

py=python3
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[$extras]"
# The scheduler's compiled kernels: built once here (~30 s), not by the first ulm command.
.venv/bin/python -m ulm.warm
echo "setup.sh: ready (.venv, extras: $extras)"
