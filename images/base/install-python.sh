#!/bin/sh
# Make sure the image has Python 3.11 with venv, whatever OS image the base starts from.
#
# Why 3.11: GEM's wheels refuse Python 3.12.1 and later (Requires-Python <=3.12), and every lock is resolved for
# 3.11. The local Debian 12 base already has it (debootstrap --include=python3,python3-venv), so nothing is
# fetched there; Debian 12 from a registry gets it from the Debian archive; Ubuntu 24.04 (the CUDA image) ships
# 3.12 only and gets 3.11 from the deadsnakes archive, with a compiler for the few source-only distributions.
set -eu

if command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "install-python: $(python3.11 --version) already present"
  exit 0
fi

. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
case "$ID:${VERSION_CODENAME:-}" in
  debian:bookworm)
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc ca-certificates
    ;;
  ubuntu:*)
    apt-get update
    apt-get install -y --no-install-recommends software-properties-common gpg-agent ca-certificates
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev build-essential
    apt-get purge -y --auto-remove software-properties-common gpg-agent
    ;;
  *)
    echo "install-python: no recipe for $ID ${VERSION_CODENAME:-}; start from Debian 12 or Ubuntu" >&2
    exit 1
    ;;
esac
rm -rf /var/lib/apt/lists/*
python3.11 -c 'import venv, ensurepip'
echo "install-python: $(python3.11 --version)"
