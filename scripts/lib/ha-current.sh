# The current lane's environment, shared by `scripts/setup --ha-current` and `scripts/ha-current`
# (sourced, with HC_REPO set to the repository).
#
# Python 3.14 is taken from the system when a working `python3.14` (>= 3.14.2) is on PATH.
# Otherwise it comes from a minimal Debian unstable root built with debootstrap: its packages
# need a newer glibc than the host's, so commands run chrooted into it. Each command gets its
# own private mount namespace (`unshare --mount`) in which the repository, /tmp, /proc, /dev
# and /sys are bind-mounted at the same paths; the namespace, and with it every mount, ends with
# the command. Nothing is left mounted on the host, whatever kills the command, and two
# commands never share (or unmount) each other's mounts. The network is the host's.
#
# Both the root and the virtualenvs live outside the repository, in a cache that every clone
# and worktree shares:
#   CIRCLE_HA_CURRENT_CACHE   default /var/cache/circle-ha-current (as root),
#                             else ${XDG_CACHE_HOME:-~/.cache}/circle-ha-current
#   CIRCLE_HA_CURRENT_ROOT    the Debian root; default $CIRCLE_HA_CURRENT_CACHE/sid-root
#   CIRCLE_HA_CURRENT_PYTHON  a Python 3.14 to use instead of searching PATH;
#                             "root" forces the Debian root even where a python3.14 exists.
# A virtualenv is keyed by the hash of the requirements, the constraints and the recipe, so
# worktrees with the same pins share one and a changed pin builds a new one beside it.

# CIRCLE_HA_LANE picks the pins: "current" (the default; the whole suite) or "2026.11" (the
# release users run, end to end only: scripts/release-smoke). Each gets its own virtualenv.
case "${CIRCLE_HA_LANE:-current}" in
  current)
    HC_REQS=$HC_REPO/scripts/requirements_ha_current.txt
    HC_CONSTRAINTS=$HC_REPO/scripts/constraints/ha-2026.10.4.txt
    ;;
  2026.11)
    HC_REQS=$HC_REPO/scripts/requirements_ha_2026.11.txt
    HC_CONSTRAINTS=$HC_REPO/scripts/constraints/ha-2026.11.0.txt
    ;;
  *)
    echo "CIRCLE_HA_LANE must be current or 2026.11, not ${CIRCLE_HA_LANE}" >&2
    exit 2
    ;;
esac
# Debian packages of the root: Python, compilers for wheels built from source, node for
# tests/test_simulator.py's sample client.
HC_PACKAGES=(python3.14 python3.14-venv python3.14-dev gcc g++ make libc6-dev pkg-config
  git ca-certificates nodejs)
HC_SUITE=sid
HC_MIRROR=${CIRCLE_HA_CURRENT_MIRROR:-http://deb.debian.org/debian}
# Bumped when the way the root or a virtualenv is built changes.
HC_RECIPE=1

if [[ -n "${CIRCLE_HA_CURRENT_CACHE:-}" ]]; then
  HC_CACHE=$CIRCLE_HA_CURRENT_CACHE
elif [[ $EUID -eq 0 ]]; then
  HC_CACHE=/var/cache/circle-ha-current
else
  HC_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/circle-ha-current
fi
HC_ROOT=${CIRCLE_HA_CURRENT_ROOT:-$HC_CACHE/sid-root}

hc_system_python() {
  # A python3.14 of this machine that can make a virtualenv, or nothing.
  local candidates=()
  case "${CIRCLE_HA_CURRENT_PYTHON:-}" in
    root) return 1 ;;
    "") ;;
    *) candidates+=("$CIRCLE_HA_CURRENT_PYTHON") ;;
  esac
  command -v python3.14 >/dev/null 2>&1 && candidates+=("$(command -v python3.14)")
  local p
  for p in "${candidates[@]}"; do
    if "$p" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 14, 2))' \
      >/dev/null 2>&1; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# HC_MODE: "system" (a python3.14 here) or "root" (the Debian root).
# HC_VENV: the virtualenv as the command sees it; HC_VENV_HOST: the same on the host.
if HC_PYTHON=$(hc_system_python); then
  HC_MODE=system
  hc_identity="system $HC_PYTHON $("$HC_PYTHON" -VV 2>&1)"
else
  HC_MODE=root
  HC_PYTHON=/usr/bin/python3.14
  hc_identity="root $HC_SUITE"
fi
HC_KEY=$({
  echo "$HC_RECIPE $hc_identity"
  cat "$HC_REQS" "$HC_CONSTRAINTS"
} | sha256sum | cut -c1-16)
unset hc_identity
if [[ $HC_MODE == system ]]; then
  HC_VENV=$HC_CACHE/venvs/$HC_KEY
  HC_VENV_HOST=$HC_VENV
else
  HC_VENV=/opt/circle-ha-current/venvs/$HC_KEY
  HC_VENV_HOST=$HC_ROOT$HC_VENV
fi
HC_ROOT_STAMP=$HC_ROOT/.circle-root.stamp
HC_ROOT_WANT=$(echo "$HC_RECIPE $HC_SUITE ${HC_PACKAGES[*]}" | sha256sum | cut -c1-16)
HC_VENV_STAMP=$HC_VENV_HOST/.circle-venv.stamp

hc_ready() {
  # True when the environment for these pins is complete (no lock: stamps are written last).
  if [[ $HC_MODE == root ]]; then
    [[ -f $HC_ROOT_STAMP && "$(cat "$HC_ROOT_STAMP")" == "$HC_ROOT_WANT" ]] || return 1
  fi
  [[ -f $HC_VENV_STAMP && "$(cat "$HC_VENV_STAMP")" == "$HC_KEY" ]]
}

# The mounts of one command, run by bash inside its fresh private mount namespace:
#   $1 root, $2 working directory, $3 virtualenv, then the command.
# Extra directories to share (the repository, its git directory) come in HC_SHARE, one per line.
# shellcheck disable=SC2016
HC_ENTER='
set -eu
root=$1 cwd=$2 venv=$3
shift 3
mount --make-rprivate /
bind() { # host path -> the same path in the root
  [ -e "$root$1" ] || { if [ -d "$1" ]; then mkdir -p "$root$1"; else touch "$root$1"; fi; }
  mount --rbind "$1" "$root$1"
}
for dir in /proc /sys /dev /tmp; do bind "$dir"; done
for file in /etc/resolv.conf /etc/hosts /etc/pip.conf; do
  if [ -f "$file" ]; then bind "$file"; fi
done
while IFS= read -r dir; do
  case "$dir" in ""|/tmp|/tmp/*) ;; *) bind "$dir" ;; esac
done <<EOF
$HC_SHARE
EOF
unset HC_SHARE
exec chroot "$root" /usr/bin/env -u PYTHONHOME \
  PATH="$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  VIRTUAL_ENV="$venv" \
  /bin/sh -c '"'"'cd "$1" || { echo "ha-current: $1 is not shared with the Debian root (run from the repository or /tmp)" >&2; exit 125; }; shift; exec "$@"'"'"' \
  ha-current "$cwd" "$@"
'

hc_share() {
  # What a command in the root sees at the same path: the repository and its git directory.
  local repo=$HC_REPO common
  echo "$repo"
  if common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
    case "$common" in "$repo"/*) ;; *) echo "$common" ;; esac
  fi
}

hc_run_in_root() {
  # Runs a command in the root as a child (for setup); `scripts/ha-current` execs instead.
  HC_SHARE=$(hc_share) unshare --mount -- bash -c "$HC_ENTER" ha-current \
    "$HC_ROOT" "$(pwd -P)" "$HC_VENV" "$@"
}
