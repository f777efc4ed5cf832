#!/usr/bin/env bash
# Install hamta-ivr as the systemd service hamta-ivr@PORT, as root, like a Debian postinst:
#   deploy/install.sh [--prefix DIR] [--config FILE] [--unit-dir DIR] [--bin-dir DIR] [--no-start]
#   deploy/install.sh --uninstall [same options]
# The service never runs the clone: a wheel built from it is installed (not editable) with its
# dependencies into PREFIX/venv (default /opt/hamta-ivr/venv), and BIN_DIR/hamta-ivr (default
# /usr/local/bin) points there. The developer's editable venv ($HAMTA_CACHE/venv) stays apart;
# it only builds the wheel. Dependencies' wheels are cached in $HAMTA_CACHE/wheels: after the
# first time an install needs no network. Then the user hamta, the config file (if absent:
# deploy/config.toml, 640 root:hamta), the data dir and spool, the static units (deploy/*.service)
# with a drop-in for what the config file moves, `systemd-analyze verify`, the registry migrated
# as hamta, and where systemd runs the instance enabled and (re)started. Idempotent: rerun it to
# deploy a new version of the clone, or after changing data_dir, spool_dir, db_url or drain.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clone=$(dirname "$here")
HAMTA_CACHE=${HAMTA_CACHE:-/var/cache/hamta-ivr}
SERVICE_USER=hamta
SERVICE_HOME=/var/lib/hamta-ivr
ASTERISK_USER=asterisk  # reads the spool (secret digit strings) through the group hamta
SYSTEMD_UNIT_DIR=/etc/systemd/system
UNIT=hamta-ivr@.service
SMS_UNIT=hamta-ivr-sms.service

prefix=/opt/hamta-ivr config=${HAMTA_CONFIG:-/etc/hamta-ivr/config.toml}
unit_dir=$SYSTEMD_UNIT_DIR bin_dir=/usr/local/bin start=1 action=do_install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift ;;
    --config) config=$2; shift ;;
    --unit-dir) unit_dir=$2; shift ;;
    --bin-dir) bin_dir=$2; shift ;;
    --no-start) start="" ;;
    --uninstall) action=do_uninstall ;;
    *) printf 'deploy/install.sh: unknown option %s (see the comment at its top)\n' "$1" >&2; exit 2 ;;
  esac
  shift
done
venv=$prefix/venv
exe=$venv/bin/hamta-ivr

say() { printf 'hamta-ivr install: %s\n' "$*"; }
die() { printf 'deploy/install.sh: %s\n' "$*" >&2; exit 2; }
systemd_here() { [ -d /run/systemd/system ] && [ "$unit_dir" = "$SYSTEMD_UNIT_DIR" ]; }

# a command as the service runs it: its user, its config file, nothing else from this shell
as_user() {
  setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups env -i \
    HAMTA_CONFIG="$config" XDG_DATA_HOME="$(dirname "$SERVICE_HOME")" PATH=/usr/bin:/bin \
    LANG=C.UTF-8 "$@"
}

# The clone's wheel (built from a copy: nothing is written into the clone), installed with its
# dependencies from the wheel cache, fetched there first when one is missing.
install_code() {
  local wheel build=("$HAMTA_CACHE/venv/bin/python" -m pip wheel --no-build-isolation)
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  tar -C "$clone" --exclude=./.git --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - . | tar -C "$src" -xf -
  # the dev venv has the build backend (setuptools): no network; else pip fetches it
  "$HAMTA_CACHE/venv/bin/python" -c 'import setuptools' 2>/dev/null ||
    build=(/usr/bin/python3 -m pip wheel)
  "${build[@]}" -q --no-deps -w "$src/dist" "$src" >/dev/null
  wheel=$(echo "$src"/dist/hamta_ivr-*.whl)
  [ -f "$wheel" ] || die "building the wheel of $clone made no hamta_ivr-*.whl"
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv (Debian's Python: the user $SERVICE_USER runs it)"
    mkdir -p "$prefix"
    /usr/bin/python3 -m venv "$venv"
  fi
  local pip=("$venv/bin/pip" install -q --disable-pip-version-check --no-index)
  mkdir -p "$HAMTA_CACHE/wheels"
  if ! "${pip[@]}" --find-links "$HAMTA_CACHE/wheels" "$wheel[postgres]" >/dev/null 2>&1; then
    say "fetching the dependencies' wheels into $HAMTA_CACHE/wheels (once)"
    "$venv/bin/pip" wheel -q --disable-pip-version-check -w "$HAMTA_CACHE/wheels" "$wheel[postgres]"
    rm -f "$HAMTA_CACHE"/wheels/hamta_ivr-*.whl  # the clone's own wheel is never cached
    "${pip[@]}" --find-links "$HAMTA_CACHE/wheels" "$wheel[postgres]"
  fi
  "${pip[@]}" --no-deps --force-reinstall "$wheel"  # the same version number, new code
  say "installed $(basename "$wheel") into $venv (not editable: the clone can change freely)"
  if [ -e "$bin_dir/hamta-ivr" ] && [ ! -L "$bin_dir/hamta-ivr" ]; then
    say "kept $bin_dir/hamta-ivr (not a link of ours); the installed command is $exe"
  else
    mkdir -p "$bin_dir"
    ln -sfn "$exe" "$bin_dir/hamta-ivr"
  fi
}

ensure_user() {
  id -u "$SERVICE_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --home-dir "$SERVICE_HOME" --no-create-home \
    --shell /usr/sbin/nologin --comment "Hamta IVR FastAGI server" "$SERVICE_USER" ||
    id -u "$SERVICE_USER" >/dev/null 2>&1 || die "cannot create the user $SERVICE_USER (above)"
  say "created the system user $SERVICE_USER (home $SERVICE_HOME, no login)"
}

write_config() {  # when absent: deploy/config.toml, 640 root:hamta, its folder 750
  local folder
  folder=$(dirname "$config")
  if [ ! -d "$folder" ]; then
    install -d -m 750 -o root -g "$SERVICE_USER" "$folder"
  fi
  if [ -e "$config" ]; then
    say "kept $config"
  else
    install -m 640 -o root -g "$SERVICE_USER" "$here/config.toml" "$config"
    say "wrote $config (640 root:$SERVICE_USER): edit it, then rerun me or restart the service"
  fi
}

# Data dir (750), spool (2750: files keep the group Asterisk reads through), sounds (755), owned
# by the user; a registry or pepper left by another user, or readable by others: the user's, 600.
make_dirs() {
  local dir_mode dir mode f
  for dir_mode in "$data_dir:750" "$spool_dir:2750" "$sounds_dir:755"; do
    dir=${dir_mode%:*} mode=${dir_mode##*:}
    mkdir -p "$dir"
    chown "$SERVICE_USER:$SERVICE_USER" "$dir"
    chmod "$mode" "$dir"
  done
  for f in registry.db registry.db-wal registry.db-shm pepper; do
    f=$data_dir/$f
    [ -e "$f" ] || continue
    if [ "$(stat -c %U "$f")" != "$SERVICE_USER" ]; then
      chown "$SERVICE_USER:$SERVICE_USER" "$f"
      say "$f now belongs to $SERVICE_USER (the service writes it)"
    fi
    if [ $(( 8#$(stat -c %a "$f") & 8#077 )) -ne 0 ]; then  # group hamta holds Asterisk's user
      chmod 600 "$f"
      say "$f is now 600 (only $SERVICE_USER reads it)"
    fi
  done
  if id -u "$ASTERISK_USER" >/dev/null 2>&1 &&
     ! id -nG "$ASTERISK_USER" | tr ' ' '\n' | grep -qx "$SERVICE_USER"; then
    usermod --append --groups "$SERVICE_USER" "$ASTERISK_USER"
    say "user $ASTERISK_USER added to group $SERVICE_USER to read the spool $spool_dir: restart Asterisk once"
  fi
}

# A pepper outside the data dir is the operator's (the service cannot write /etc): the user must
# read it; never made here (a new pepper only for a new registry, by serve).
check_pepper() {
  [ -n "$pepper_file" ] || return 0
  if [ ! -e "$pepper_file" ]; then
    say "the pepper file $pepper_file (pepper_file in $config) does not exist: restore the" \
        "registry's pepper there, or for a new registry create it with \`python3 -c 'import" \
        "secrets; print(secrets.token_hex(32))' > $pepper_file\`, then chown $SERVICE_USER and" \
        "chmod 600 it (its group may hold Asterisk's user)"
  elif ! as_user test -r "$pepper_file"; then
    say "the user $SERVICE_USER cannot read the pepper file $pepper_file: chown $SERVICE_USER" \
        "and chmod 600 it (and let it enter the folder)"
  fi
}

# The static units, and beside each the drop-in for what the config file or prefix changes.
write_units() {
  local unit text flag
  mkdir -p "$unit_dir"
  for unit in "$UNIT" "$SMS_UNIT"; do
    install -m 644 "$here/$unit" "$unit_dir/$unit"
    flag=""; [ "$unit" = "$SMS_UNIT" ] && flag=--sms
    text=$(env -i LANG=C.UTF-8 "$exe" service dropin --config "$config" --prefix "$prefix" $flag)
    if [ -n "$text" ]; then
      mkdir -p "$unit_dir/$unit.d"
      printf '%s\n' "$text" > "$unit_dir/$unit.d/config.conf"
      chmod 644 "$unit_dir/$unit.d/config.conf"
    else
      rm -f "$unit_dir/$unit.d/config.conf"
      rmdir "$unit_dir/$unit.d" 2>/dev/null || true
    fi
  done
  say "installed $unit_dir/$UNIT and $SMS_UNIT (instance hamta-ivr@$port: $exe serve as" \
      "$SERVICE_USER)"
}

verify_units() {  # an instance of the template and the SMS unit, each with its drop-in
  command -v systemd-analyze >/dev/null ||
    { say "systemd-analyze is not installed (Debian package systemd): units not verified"; return 0; }
  local tmp out unit
  tmp=$(mktemp -d)
  for unit in "$UNIT" "$SMS_UNIT"; do
    cp "$unit_dir/$unit" "$tmp/${unit/@/@$port}"
    [ -d "$unit_dir/$unit.d" ] && cp -r "$unit_dir/$unit.d" "$tmp/"
  done
  out=$(cd "$tmp" && systemd-analyze verify "hamta-ivr@$port.service" "$SMS_UNIT" 2>&1) ||
    out=${out:-failed}
  rm -rf "$tmp"
  [ -z "$out" ] || die "systemd-analyze verify rejects the units in $unit_dir: $out"
  say "systemd-analyze verify: clean"
}

start_service() {
  local units=("hamta-ivr@$port.service")
  [ "$sms" = 1 ] && units+=("$SMS_UNIT")
  if [ -z "$start" ]; then
    say "not started (--no-start): systemctl enable --now ${units[*]}"
  elif systemd_here; then
    systemctl daemon-reload
    systemctl enable --quiet "${units[@]}"
    systemctl restart "${units[@]}"  # the new code; a restart drains the running calls
    say "enabled and (re)started ${units[*]}; logs: journalctl -u hamta-ivr@$port"
  elif [ -d /run/systemd/system ]; then
    say "units written to $unit_dir, not systemd's $SYSTEMD_UNIT_DIR: not enabled"
  else
    say "systemd is not running here (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)):" \
        "units installed, not started; the same command by hand: setpriv" \
        "--reuid=$SERVICE_USER --regid=$SERVICE_USER --init-groups env -i" \
        "HAMTA_CONFIG=$config XDG_DATA_HOME=$(dirname "$SERVICE_HOME") $exe serve --port $port"
  fi
}

do_install() {
  install_code
  ensure_user
  write_config
  local data_dir spool_dir sounds_dir port pepper_file sms paths
  paths=$(env -i LANG=C.UTF-8 "$exe" service paths --config "$config") ||
    die "fix $config (the line above names the setting), then rerun me"
  eval "$paths"
  make_dirs
  as_user "$exe" --help >/dev/null ||
    die "the user $SERVICE_USER cannot run $exe: install it where it can read it (e.g. /opt)"
  local upgraded
  if upgraded=$(as_user "$exe" db upgrade 2>&1); then
    say "registry migrated (as the user $SERVICE_USER)"
  else
    say "could not migrate the registry yet ($(printf '%s' "$upgraded" | tail -n 1)); once the" \
        "database is up: sudo -u $SERVICE_USER HAMTA_CONFIG=$config $exe db upgrade"
  fi
  check_pepper
  write_units
  verify_units
  [ "$sms" = 1 ] || say "$SMS_UNIT not enabled: set kannel_url in $config, then rerun me"
  start_service
}

do_uninstall() {  # keeps the user, the config file and the data
  local name
  if systemd_here; then
    for name in "$unit_dir"/multi-user.target.wants/hamta-ivr@*.service "$SMS_UNIT"; do
      name=$(basename "$name")
      [ "$name" = 'hamta-ivr@*.service' ] && continue
      systemctl disable --now --quiet "$name" 2>/dev/null || true  # stop drains the calls
      say "stopped and disabled $name"
    done
  fi
  rm -rf "${unit_dir:?}/$UNIT" "$unit_dir/$UNIT.d" "$unit_dir/$SMS_UNIT" "$unit_dir/$SMS_UNIT.d"
  systemd_here && systemctl daemon-reload
  [ "$(readlink "$bin_dir/hamta-ivr" 2>/dev/null)" = "$exe" ] && rm -f "$bin_dir/hamta-ivr"
  rm -rf "${venv:?}"
  say "removed the units, $venv and $bin_dir/hamta-ivr; kept the user $SERVICE_USER, $config" \
      "and the data (remove them by hand)"
}

[ "$(id -u)" = 0 ] || die "run me as root: I create a user and install into $prefix and $unit_dir"
"$action"
