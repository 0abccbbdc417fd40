#!/usr/bin/env bash
# What the tests need beyond `pip install -e ".[dev]"`: Horovod built against the dev extra's
# torch (scripts/install_horovod.sh), Debian's Chromium for the browser tests
# (tests/browser.py launches it through Playwright; Playwright's own browser downloads are
# not used), and Debian's PostgreSQL server for the state tests on Postgres
# (tests/postgres.py starts its own cluster with initdb; no service is started here), and
# Debian's OpenSSH server and client for tests/security/test_key_tunnel.py (which starts its
# own sshd on a free port; the package's own service is not needed), and rsync for Ray's
# cluster launcher (tests/cluster_hosts/).
# Idempotent: quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium
log() { echo "[install_test_deps] $*" >&2; }

bash scripts/install_horovod.sh

# PostgreSQL's initdb: on PATH, or where Debian's package puts it (tests/postgres.py looks
# in both places).
have_initdb() {
    command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium chromium-driver)
have_initdb || packages+=(postgresql)
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
command -v ssh >/dev/null || packages+=(openssh-client)
# Ray's cluster launcher copies file mounts with rsync (tests/cluster_hosts/).
command -v rsync >/dev/null || packages+=(rsync)
[ "${#packages[@]}" -eq 0 ] && exit 0

# apt-get as root, or through sudo when there is one that works without a password prompt.
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    log "${packages[*]} missing and apt-get needs root: run as root, or with passwordless" \
        "sudo, or install Debian's ${packages[*]} yourself"
    exit 1
fi
apt=("${as_root[@]}" apt-get)
if ! have_initdb; then
    # Debian's postgresql would make (and start) a cluster of its own; the tests make theirs.
    "${as_root[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
        "${as_root[@]}" tee /etc/postgresql-common/createcluster.d/spellray-tests.conf >/dev/null
fi
install_packages() {
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
}
log "installing ${packages[*]} with apt-get"
# The package lists are refreshed only when the install cannot find what it needs.
if ! install_packages 2>/dev/null; then
    "${apt[@]}" update -qq >/dev/null
    install_packages || { log "apt-get could not install ${packages[*]}"; exit 1; }
fi
[ -x "$CHROMIUM" ] || { log "apt-get installed chromium but $CHROMIUM is not there"; exit 1; }
have_initdb || { log "apt-get installed postgresql but initdb is not there"; exit 1; }
[ -x /usr/sbin/sshd ] || { log "apt-get installed openssh-server but /usr/sbin/sshd is not there"; exit 1; }
