#!/bin/sh
# Provision the development Asterisk: Debian packages on the host and, ONCE, a Debian sid root
# file system holding Asterisk 22 (Debian 12 has no asterisk package). Idempotent: a complete tree
# carries a stamp file and is reused; an interrupted build is started over.
#
#   asterisk-conf/dev-asterisk.sh bootstrap     # needs root and the Debian mirror
#
#   asterisk-conf/dev-asterisk.sh version       # the Asterisk the cached root holds, and when built
#
# Environment: HAMTA_ASTERISK_ROOT (default $HAMTA_CACHE/asterisk-root, HAMTA_CACHE defaulting to
#              /var/cache/hamta-ivr),
#              HAMTA_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              HAMTA_ASTERISK_SUITE (default sid: the only Debian suite with asterisk; what it holds
#              changes from day to day, so the version built is recorded and printed).
set -eu

ROOT="${HAMTA_ASTERISK_ROOT:-${HAMTA_CACHE:-/var/cache/hamta-ivr}/asterisk-root}"
MIRROR="${HAMTA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${HAMTA_ASTERISK_SUITE:-sid}"
STAMP="$ROOT/.hamta-asterisk-ready"
PY_STAMP="$ROOT/.hamta-python-ready"
VENV=/opt/hamta-ivr/venv   # inside the chroot: hamta-ivr for classic AGI (AGI(hamta-ivr-agi))
HERE="$(cd "$(dirname "$0")" && pwd)"
HOST_PACKAGES="debootstrap sip-tester espeak-ng sox"

log() { printf 'dev-asterisk: %s\n' "$*" >&2; }

# run in the chroot with a clean environment (the host's CA/pip settings name host paths),
# keeping a proxy if the host has one
in_root() {
    chroot "$ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
        ${no_proxy:+no_proxy=$no_proxy} "$@"
}

# apt and dpkg in the root want /proc and a pty (/dev/pts: "Can not write log (Is /dev/pts
# mounted?)"): mounted while they run, released on exit
mount_root_fs() {
    mkdir -p "$ROOT/proc" "$ROOT/dev/pts"
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"
}
umount_root_fs() {
    for m in dev/pts proc; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount "$ROOT/$m" || umount -l "$ROOT/$m"; fi
    done
}

host_packages() {
    missing=""
    for pkg in $HOST_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        log "installing host packages:$missing"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
}

chroot_tree() {
    if [ -f "$STAMP" ]; then
        log "Asterisk root ready at $ROOT: $(version)"
        return 0
    fi
    if [ -e "$ROOT" ]; then
        log "removing incomplete tree $ROOT"
        for m in proc dev/pts dev; do umount "$ROOT/$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$ROOT"
    fi
    mkdir -p "$(dirname "$ROOT")"
    log "debootstrap $SUITE into $ROOT (a few minutes)"
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    # the host name resolves locally (Asterisk looks it up on every INVITE); `hamta-ivr asterisk
    # up` adds it again when the machine's name changes
    printf '127.0.1.1\t%s\n' "$(hostname)" >> "$ROOT/etc/hosts"
    mount_root_fs
    log "installing asterisk in the chroot"
    in_root apt-get -o Acquire::Check-Valid-Until=false update -q
    in_root apt-get install -y -q --no-install-recommends asterisk
    in_root apt-get clean
    asterisk_version="$(in_root dpkg-query -W -f='${Version}' asterisk)"
    printf 'Asterisk %s (Debian %s, package %s) built %s\n' "$(in_root asterisk -V | sed 's/^Asterisk //')" \
        "$SUITE" "$asterisk_version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$STAMP"
    log "done: $(version)"
}

version() {
    if [ -f "$STAMP" ]; then cat "$STAMP"; else echo "not built yet ($ROOT)"; fi
}

# Python and hamta-ivr's dependencies in the chroot, so Asterisk can start the classic AGI script
# as a PBX would; `hamta-ivr asterisk up` installs the checkout itself (--no-deps) when it changed.
chroot_python() {
    local deps
    deps="$(python3 -c 'import sys, tomllib; print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$HERE/../pyproject.toml")"
    # the stamp names the dependencies installed: a dependency added since installs again
    if [ -f "$PY_STAMP" ] && [ "$(sed -n 2p "$PY_STAMP")" = "$deps" ]; then
        return 0
    fi
    log "installing Python and hamta-ivr's dependencies in the chroot (classic AGI)"
    mount_root_fs
    in_root apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates
    in_root apt-get clean
    # the host's CA bundle (it may trust a TLS-intercepting proxy the chroot's bundle does not)
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/hamta-host-ca.crt" 2>/dev/null || true
    rm -rf "$ROOT$VENV"
    in_root python3 -m venv "$VENV"
    # shellcheck disable=SC2086 # one word per requirement
    in_root env PIP_CERT=/etc/ssl/certs/hamta-host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$VENV/bin/pip" install -q setuptools wheel $deps
    { in_root "$VENV/bin/python" --version; echo "$deps"; } > "$PY_STAMP"
}

case "${1:-bootstrap}" in
    bootstrap)
        [ "$(id -u)" = 0 ] || { log "run as root (debootstrap, chroot, apt-get)"; exit 2; }
        # one bootstrap at a time (a test run and a developer may start one together)
        mkdir -p "$(dirname "$ROOT")"
        exec 9> "$ROOT.lock"
        flock 9
        trap umount_root_fs EXIT
        host_packages
        chroot_tree
        chroot_python
        ;;
    root) printf '%s\n' "$ROOT" ;;
    ready) [ -f "$STAMP" ] && [ -f "$PY_STAMP" ] ;;
    version) version ;;
    *) log "usage: $0 bootstrap|root|ready|version"; exit 2 ;;
esac
