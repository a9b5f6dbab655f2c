#!/usr/bin/env bash
# Install the pinned n8n (scripts/n8n/package.json) that the real-n8n tests start, into
# $SMARTEROS_N8N_DIR, never into the project's node_modules. By default that is the user's cache,
# one folder per pin (~/.cache/smarteros/n8n-<hash of package.json>), shared by every checkout:
# n8n only reads it (its data lives in each test run's own folder), and a new clone then skips
# the install. Idempotent: nothing happens when that exact package.json was installed completely
# before. The first install writes ~2,090 packages (2.3 GB, 6-8 minutes); npm's cache (~/.npm)
# makes a re-install mostly offline. SMARTEROS_REAL_N8N=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m[n8n]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[n8n] %s\033[0m\n  fix: %s\n' "$1" "$2" >&2; exit 1; }

if [[ "${SMARTEROS_REAL_N8N:-1}" == 0 ]]; then
  say "SMARTEROS_REAL_N8N=0: not installing n8n (the real-n8n tests will be skipped)"
  exit 0
fi

SPEC=scripts/n8n/package.json
want_version=$(node -p "require('./$SPEC').dependencies.n8n")
want=$(sha256sum "$SPEC" | cut -d' ' -f1)
DIR="${SMARTEROS_N8N_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smarteros/n8n-${want:0:16}}"
MARKER="$DIR/.installed"
mkdir -p "$(dirname "$DIR")"
# Two checkouts installing at once: the second waits, then finds the install done.
exec 9>"$DIR.lock"
flock 9

# A checkout made before installs were shared keeps its complete install in .run/n8n: move it.
OLD=.run/n8n
if [[ -z "${SMARTEROS_N8N_DIR:-}" && ! -e "$DIR" && "$(cat "$OLD/.installed" 2>/dev/null)" == "$want" ]]; then
  say "moving this checkout's n8n install from $OLD to $DIR (shared by every checkout)"
  mv "$OLD" "$DIR"
fi

# A marker written only after a complete install: an interrupted one is redone, not trusted.
if [[ "$(cat "$MARKER" 2>/dev/null)" == "$want" && -x "$DIR/node_modules/.bin/n8n" ]]; then
  exit 0
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' \
  || die "n8n $want_version needs Node >= 20.19 (found $(node --version))" "install a newer nodejs"

say "installing n8n $want_version into $DIR (first time 6-8 minutes and 2.3 GB; later runs skip this)"
mkdir -p "$DIR"
rm -f "$MARKER"
cp "$SPEC" "$DIR/package.json"

started=$SECONDS
npm install --prefix "$DIR" --no-audit --no-fund --prefer-offline --loglevel=error \
  >"$DIR/install.log" 2>&1 &
npm_pid=$!
# npm shows no progress without a terminal (CI): report the size installed so far instead.
reported=$SECONDS
while kill -0 "$npm_pid" 2>/dev/null; do
  sleep 1
  if ((SECONDS - reported >= 20)) && kill -0 "$npm_pid" 2>/dev/null; then
    say "still installing n8n: $(du -sh "$DIR/node_modules" 2>/dev/null | cut -f1 || echo 0) so far, $((SECONDS - started))s"
    reported=$SECONDS
  fi
done
if ! wait "$npm_pid"; then
  tail -n 30 "$DIR/install.log" >&2
  die "npm could not install n8n $want_version (log: $DIR/install.log)" \
    "check the network and the npm output above, then run make again (it resumes from npm's cache)"
fi
[[ -x "$DIR/node_modules/.bin/n8n" ]] || die "npm finished but $DIR/node_modules/.bin/n8n is missing" \
  "remove $DIR and run make again"
echo "$want" >"$MARKER"
say "n8n $want_version installed in $((SECONDS - started))s"
