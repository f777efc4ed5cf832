#!/usr/bin/env bash
# One entry point for a fresh Debian machine, as root:
#   ./setup.sh demo   set everything up, then run the IVR on a real Asterisk with a demo registry
#   ./setup.sh test   set everything up, then run the whole test suite (what CI runs)
#   ./setup.sh install  set up, then install `hamta-ivr serve` as the systemd service hamta-ivr@4573
#                     (deploy/install.sh: a wheel of this clone in /opt/hamta-ivr, user hamta,
#                     /etc/hamta-ivr/config.toml, /var/lib/hamta-ivr); demo does it too
#   ./setup.sh deps   only install and build what the other two need
# Everything heavy is cached outside the clone, under $HAMTA_CACHE (default /var/cache/hamta-ivr):
# the developer's (editable) virtualenv, the dependencies' wheels, the Asterisk root file system,
# the PostgreSQL test cluster. The service runs none of it: its own venv is $SERVICE_PREFIX/venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export HAMTA_CACHE=${HAMTA_CACHE:-/var/cache/hamta-ivr}
venv=$HAMTA_CACHE/venv
# postgresql-15 rather than `postgresql`: see install_postgresql (no unused default cluster);
# systemd for systemd-analyze (the service unit is verified), util-linux for setpriv
# kannel + kannel-extras: the SMS gateway and its test SMSC fakesmsc (see quiet_debian_kannel)
DEBIAN_PACKAGES=(python3 python3-venv python3-dev gcc espeak-ng sox libsox-fmt-mp3 debootstrap
                 sip-tester procps iproute2 ca-certificates systemd util-linux kannel kannel-extras)
POSTGRESQL_PACKAGES=(postgresql-15 postgresql-client-15)
CONFIG_FILE=${HAMTA_CONFIG:-/etc/hamta-ivr/config.toml}
SERVICE_USER=hamta
SERVICE_PREFIX=/opt/hamta-ivr  # deploy/install.sh's default: the installed code, not the clone's

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 2; }

need_root() {
  [ "$(id -u)" = 0 ] || die "run me as root: I install Debian packages and start Asterisk (sudo $0 $*)"
}

install_debian_packages() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    case " ${missing[*]} " in *" kannel "*) quiet_debian_kannel ;; esac
  fi
  install_postgresql
  install_mbrola
}

# Debian's kannel starts its own bearerbox and wapbox (/etc/init.d/kannel) when installed and at
# every boot. The tests start their own Kannel on free ports (ivr/testing/kannel.py) and a
# deployment configures its own: the package's service is stopped and disabled, only when this
# script has just installed it (a Kannel configured before is left alone).
quiet_debian_kannel() {
  if [ -d /run/systemd/system ]; then
    systemctl disable --now kannel.service >/dev/null 2>&1 || true
  else
    /etc/init.d/kannel stop >/dev/null 2>&1 || true
  fi
  update-rc.d kannel disable >/dev/null 2>&1 || true
}

# PostgreSQL for the test server (db/pg-test-server.sh runs its own cluster under $HAMTA_CACHE).
# Debian's postinst creates and starts a default cluster `main` nobody uses: postgresql-common
# first, told not to create one, then the server.
install_postgresql() {
  local p missing=()
  for p in "${POSTGRESQL_PACKAGES[@]}"; do deb_installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then unused_main_cluster_hint; return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  no_main_cluster
  say "installing PostgreSQL (no default cluster): ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

no_main_cluster() {  # postgresql-common installed and told: create_main_cluster = false
  local conf=/etc/postgresql-common/createcluster.conf
  deb_installed postgresql-common ||
    apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
  if ! grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' "$conf" 2>/dev/null; then
    sed -i -E 's/^[#[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' "$conf"
    grep -q '^create_main_cluster = false' "$conf" || echo 'create_main_cluster = false' >> "$conf"
  fi
}

unused_main_cluster_hint() {  # a machine set up before: say how to drop it, never drop it
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters -h 2>/dev/null | awk '$2 == "main" {print $1}' | while read -r v; do
    printf 'setup.sh: note: the default PostgreSQL cluster %s/main is not used by hamta-ivr; ' "$v"
    printf 'if nothing else uses it: pg_dropcluster --stop %s main\n' "$v"
  done
}

# MBROLA and its Persian diphone voice ir1: the default prompt voice (espeak-ng voice mb-ir1).
# `mbrola` is in Debian's contrib, `mbrola-ir1` in non-free. When this machine's sources lack
# those components, one file adds them for the machine's own Debian release and mirror, and a
# pin lets apt take only these two packages from them: every other package keeps coming from
# where it came from. Without them the prompts fall back to espeak-ng's formant voice `fa`.
MBROLA_PACKAGES=(mbrola mbrola-ir1)
MBROLA_SOURCES=/etc/apt/sources.list.d/hamta-ivr-mbrola.sources
MBROLA_PIN=/etc/apt/preferences.d/hamta-ivr-mbrola

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
deb_candidate() {  # apt has a version of $1 it would install
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -qvx '(none)'
}

install_mbrola() {
  local p missing=()
  for p in "${MBROLA_PACKAGES[@]}"; do deb_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ! deb_candidate mbrola || ! deb_candidate mbrola-ir1; then
    add_mbrola_source
    apt-get update -qq
  fi
  say "installing MBROLA and its Persian voice (contrib, non-free): ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    printf 'setup.sh: warning: could not install %s; the prompts use the formant voice\n' \
      "${missing[*]}" >&2
}

add_mbrola_source() {
  local codename uri components=() c keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || { printf 'setup.sh: warning: unknown Debian release: no MBROLA\n' >&2; return 0; }
  # the mirror this machine already takes its release's main component from
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
          'Identifier: Packages' 2>/dev/null | awk -v r="$codename" '$2 == r && $3 == "main" {print $1; exit}')
  uri=${uri:-http://deb.debian.org/debian/}
  deb_candidate mbrola || components+=(contrib)
  deb_candidate mbrola-ir1 || components+=(non-free)
  {
    echo "# hamta-ivr setup.sh: MBROLA (contrib) and its Persian voice ir1 (non-free) only;"
    echo "# $MBROLA_PIN lets apt take nothing else from these components."
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: $codename"
    echo "Components: ${components[*]}"
    if [ -f "$keyring" ]; then echo "Signed-By: $keyring"; fi
  } > "$MBROLA_SOURCES.tmp"
  {
    for c in "${components[@]}"; do
      printf 'Explanation: hamta-ivr: nothing from %s but MBROLA\nPackage: *\n' "$c"
      printf 'Pin: release o=Debian, n=%s, c=%s\nPin-Priority: -1\n\n' "$codename" "$c"
    done
    printf 'Explanation: hamta-ivr: MBROLA and its Persian voice\nPackage: %s\n' "${MBROLA_PACKAGES[*]}"
    printf 'Pin: release o=Debian, n=%s\nPin-Priority: 500\n' "$codename"
  } > "$MBROLA_PIN.tmp"
  mv "$MBROLA_SOURCES.tmp" "$MBROLA_SOURCES"
  mv "$MBROLA_PIN.tmp" "$MBROLA_PIN"
}

install_python_package() {
  mkdir -p "$HAMTA_CACHE"
  if [ -x "$venv/bin/python" ]; then
    local real
    real=$(readlink -f "$venv/bin/python")
    case "$real" in /root/*|/home/*)  # e.g. a pyenv Python: the service user cannot run it
      say "rebuilding $venv from Debian's Python (it ran $real, which the user hamta cannot reach)"
      rm -rf "$venv" ;;
    esac
  fi
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv"
    # Debian's Python: the service user (hamta) must be able to run it (not a pyenv under /root)
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip setuptools wheel
  fi
  say "installing hamta-ivr (editable) and its dependencies"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$here[dev]"
}

prepare() {
  need_root "$@"
  install_debian_packages
  install_python_package
  export PATH=$venv/bin:$PATH
  say "preparing the development Asterisk (first time: a few minutes)"
  bash "$here/asterisk-conf/dev-asterisk.sh" bootstrap
}

# The service: a wheel of this clone installed in /opt/hamta-ivr/venv, user hamta,
# /etc/hamta-ivr/config.toml, /var/lib/hamta-ivr, the static unit deploy/hamta-ivr@.service
# (verified; enabled and started where systemd runs). See deploy/install.sh.
install_service() {
  say "installing the service (deploy/install.sh: the clone's wheel into $SERVICE_PREFIX)"
  bash "$here/deploy/install.sh" --prefix "$SERVICE_PREFIX" --config "$CONFIG_FILE"
}

# a command as the service runs it: its user, its config file, its installed code (not the
# clone's), nothing else from this shell
as_service() {
  setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups env -i \
    HAMTA_CONFIG="$CONFIG_FILE" XDG_DATA_HOME=/var/lib PATH="$SERVICE_PREFIX/venv/bin:/usr/bin:/bin" \
    LANG=C.UTF-8 "$@"
}

# The demo's SMS: `hamta-ivr serve` sends its one-time SMS codes (what moves a device off the
# kartabl's own vouched line: softphones) through the Kannel of `hamta-ivr sms lab`, which takes
# these settings (sendsms on this port, this user, the password file it makes on its first run)
# and prints each code. Appended once, each key only when absent, to a config without an
# uncommented kannel_url: an operator's Kannel is never touched. 13013 (Kannel's usual sendsms
# port) unless something answers there, e.g. Debian's own Kannel: then a free port.
DEMO_SMS_MARK="# The demo's SMS (./setup.sh demo):"
DEMO_SMS_PORT=${DEMO_SMS_PORT:-13013}
add_demo_sms_settings() {  # $1: the config file, $2: the service's data dir
  local config=$1 data=$2 port=$DEMO_SMS_PORT
  toml_key_set() { grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$config" 2>/dev/null; }
  toml_key_set kannel_url && return 0
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  local lines=("kannel_url = \"http://127.0.0.1:$port/cgi-bin/sendsms\"")
  toml_key_set kannel_username || lines+=('kannel_username = "hamta"')
  toml_key_set kannel_password_file || lines+=("kannel_password_file = \"$data/kannel-password\"")
  toml_key_set sms_sender || lines+=('sms_sender = "7777"')
  if [ -s "$config" ] && [ -n "$(tail -c 1 "$config")" ]; then echo >> "$config"; fi
  {
    echo
    echo "$DEMO_SMS_MARK serve sends its SMS codes through the Kannel of"
    echo "# \`hamta-ivr sms lab\`, which prints them (a test SMSC: nothing leaves the machine) and makes"
    echo "# the password file (600). For a real SMSC: your Kannel's sendsms-user, and drop this comment."
    printf '%s\n' "${lines[@]}"
  } >> "$config"
  say "$config: the demo's SMS settings added (kannel_url 127.0.0.1:$port: the SMS lab's Kannel)"
}

# the lab's sendsms answers on kannel_url's port (when this machine's), so a call's first SMS
# code finds it; a lab that stopped (its one line is above) only warns: no codes then
wait_sms_lab() {
  local sms_port
  sms_port=$(python -c 'import urllib.parse
from ivr.config import current
url = urllib.parse.urlsplit(current().kannel_url or "")
print(url.port if url.hostname in ("127.0.0.1", "localhost") else "")' 2>/dev/null) || sms_port=""
  [ -n "$sms_port" ] || return 0
  for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/"$sms_port") 2>/dev/null && return 0
    kill -0 "$SMS_PID" 2>/dev/null || break
    sleep 0.2
  done
  printf 'setup.sh: warning: the SMS lab is not answering on 127.0.0.1:%s (above): calls off the own line get no SMS code\n' "$sms_port" >&2
}

demo_stop() {  # the EXIT trap: what demo started
  kill "$SMS_PID" 2>/dev/null || true; wait "$SMS_PID" 2>/dev/null || true
  kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true
  hamta-ivr asterisk down
}

demo() {
  prepare "$@"
  local run=as_service port demo_sms=""
  if ! install_service; then
    printf 'setup.sh: warning: the service could not be installed (above); the demo runs as root\n' >&2
    run=""
    export HAMTA_CONFIG=""  # root's own data dir, not the service's
  else
    export HAMTA_CONFIG=$CONFIG_FILE  # asterisk up and dial (as root) see the service's data dir
    local data
    data=$(as_service python -c 'from ivr.config import data_dir_path; print(data_dir_path())')
    add_demo_sms_settings "$CONFIG_FILE" "$data"
    if grep -qF "$DEMO_SMS_MARK" "$CONFIG_FILE"; then
      demo_sms=1
      # the lab makes it as the service's user; one left by a lab run as root is given back
      if [ -e "$data/kannel-password" ]; then
        chown "$SERVICE_USER:$SERVICE_USER" "$data/kannel-password"
        chmod 600 "$data/kannel-password"
      fi
    fi
  fi
  port=$(python -c 'from ivr.config import agi_address; print(agi_address().port)')
  say "demo registry (SQLite)"
  $run hamta-ivr db upgrade
  $run hamta-ivr db seed-demo
  build_prompts $run
  SERVE_PID="" SMS_PID=""
  trap demo_stop EXIT
  trap 'exit 130' INT TERM  # so that Ctrl-C runs the EXIT trap too
  # the SMS receipts the calls write and serve's SMS codes, delivered through a local Kannel to
  # its test SMSC and printed here (`hamta-ivr sms lab`; nothing leaves the machine). First: it
  # makes the sendsms password file serve reads at start, and a call's code needs it up.
  say "starting the SMS lab (Kannel and its test SMSC)"
  $run hamta-ivr sms lab &
  SMS_PID=$!
  wait_sms_lab
  if [ -n "$run" ] && [ -d /run/systemd/system ] &&
     systemctl is-enabled --quiet "hamta-ivr@$port.service" 2>/dev/null; then
    if [ -n "$demo_sms" ]; then
      # the lab's worker alone delivers the demo's receipts: a system worker would keep trying
      # a Kannel that is gone once the demo stops (receipts then wait for the next lab)
      systemctl disable --now hamta-ivr-sms.service >/dev/null 2>&1 || true
    fi
    say "restarting the service hamta-ivr@$port (serve reads the SMS settings at start); starting Asterisk"
    systemctl restart "hamta-ivr@$port.service"
  else
    say "starting the FastAGI server (the service's command) and Asterisk"
    $run hamta-ivr serve &
    SERVE_PID=$!
  fi
  for _ in $(seq 50); do  # listening before Asterisk's status reports it
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.2
  done
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null ||
    printf 'setup.sh: warning: nothing answers on 127.0.0.1:%s: see journalctl -u hamta-ivr@%s\n' "$port" "$port" >&2
  hamta-ivr asterisk up
  local codes_note=""
  if [ -n "$demo_sms" ]; then
    codes_note=$'\nSMS codes (a softphone is never the number\'s own line: a transfer, a new code, a return or\n'
    codes_note+='a withdrawn report asks for one) print here too, "SMS CODE to 0912…: 123456": key that.'
  fi
  cat <<EOF

The IVR answers extension 7777 (Persian prompts, main menu 1-6, * repeats).
- Place a call without a phone:  $venv/bin/hamta-ivr dial --from 09121111111 --keys "5 1 1 1234# h"
- Softphone (SIP on 127.0.0.1):  an account printed above, dial 7777
- Console caller (no Asterisk):  $venv/bin/hamta-ivr call --from 09121111111
The demo numbers, passwords and codes are in docs/demo.md ("The demo registry").
SMS receipts (a transfer, an activation, a code, a report, a return) print here: "SMS to …".$codes_note
Ctrl-C stops Asterisk, the SMS lab$([ -n "$SERVE_PID" ] && echo " and the FastAGI server").

EOF
  if [ -n "$SERVE_PID" ]; then wait "$SERVE_PID"; else while :; do sleep 3600; done; fi
}

build_prompts() {  # $@: how to run hamta-ivr (as_service, or nothing: as this user)
  say "building the Persian prompts (and the names of the registry's devices)"
  "$@" hamta-ivr prompts build -q
  "$@" hamta-ivr prompts check
}

run_tests() {
  export HAMTA_CONFIG=""  # the tests make their own settings: not this machine's config file
  prepare "$@"
  build_prompts
  say "PostgreSQL test server"
  eval "$(bash "$here/db/pg-test-server.sh" start)"
  export HAMTA_TEST_PG_URL
  trap 'printf "\nThe PostgreSQL test server keeps running for the next run; stop it: bash %s stop\n" \
          "$here/db/pg-test-server.sh"' EXIT
  say "ruff"
  (cd "$here" && ruff check .)
  say "mypy"
  (cd "$here" && mypy)  # files and settings: [tool.mypy] in pyproject.toml
  say "pytest"
  cd "$here"
  python -m pytest -ra "${@:2}"
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0  # sourced (tests/test_setup_sh.py): the functions only
case "${1:-}" in
  demo) demo "$@" ;;
  test) run_tests "$@" ;;
  install) prepare "$@"; install_service ;;
  deps) prepare "$@" ;;
  *) die "usage: $0 demo|test|install|deps  (demo: run the IVR on a real Asterisk; test: the test suite; install: the systemd service)" ;;
esac
