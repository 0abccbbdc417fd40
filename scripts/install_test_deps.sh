#!/usr/bin/env bash
# What the tests need beyond `pip install -e ".[dev]"`: Horovod built against the dev extra's
# torch (scripts/install_horovod.sh), and Debian's Chromium for the browser tests
# (tests/browser.py launches it through Playwright; Playwright's own browser downloads are
# not used). Idempotent: quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium
log() { echo "[install_test_deps] $*" >&2; }

bash scripts/install_horovod.sh

[ -x "$CHROMIUM" ] && exit 0

# apt-get as root, or through sudo when there is one that works without a password prompt.
if [ "$(id -u)" -eq 0 ]; then
    apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
else
    log "$CHROMIUM is missing and apt-get needs root: run as root, or with passwordless" \
        "sudo, or install Debian's chromium and chromium-driver yourself"
    exit 1
fi
install_chromium() {
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
}
log "installing chromium and chromium-driver with apt-get"
# The package lists are refreshed only when the install cannot find what it needs.
if ! install_chromium 2>/dev/null; then
    "${apt[@]}" update -qq >/dev/null
    install_chromium || { log "apt-get could not install chromium and chromium-driver"; exit 1; }
fi
[ -x "$CHROMIUM" ] || { log "apt-get installed chromium but $CHROMIUM is not there"; exit 1; }
