#!/usr/bin/env bash
# `npm start`: bootstraps and builds what is missing, starts the dev cluster (PostgreSQL primary + 2 standbys
# with synchronous replication, behind replikit-server gateways on 7100-7102, admin API on 7200), serves the
# dashboard in www/ on http://127.0.0.1:8080, and stops everything on Ctrl-C.
#   REPLIKIT_WWW_PORT      the dashboard's port (default 8080; 0 = a free one)
#   REPLIKIT_CLUSTER_PORT  n0's gateway port (default 7100; 0 = free ports for every node and the admin API)
#   REPLIKIT_STATE_FILE    the dev cluster's state file (default: the one `replikit-server ctl` reads)
#   REPLIKIT_START_NO_BUILD=1  skip bootstrap and builds (the demo tests: scripts/test.sh built everything)
set -euo pipefail
cd "$(dirname "$0")/.."
server=${REPLIKIT_SERVER_BIN:-target/debug/replikit-server}

www_port=${REPLIKIT_WWW_PORT:-8080}
cluster_port=${REPLIKIT_CLUSTER_PORT:-7100}
# The dev cluster's default state file, as `replikit-server ctl` finds it.
if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ]; then default_state=$XDG_RUNTIME_DIR/replikit-dev-cluster.json
else default_state=/tmp/replikit-dev-cluster.json; fi
state=${REPLIKIT_STATE_FILE:-$default_state}

# Refuse clearly when a demo (or another dev cluster) already runs, or a port we need is taken.
if [ -f "$state" ]; then
  pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$state" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa dev-cluster "/proc/$pid/cmdline" 2>/dev/null; then
    echo "replikit: a demo is already running (pid $pid); stop it with Ctrl-C in its terminal"
    exit 1
  fi
fi
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
[ "$www_port" != 0 ] && ports+=("$www_port")
[ "$cluster_port" != 0 ] && ports+=("$cluster_port" $((cluster_port + 1)) $((cluster_port + 2)) $((cluster_port + 100)))
for p in "${ports[@]}"; do
  if in_use "$p"; then
    echo "replikit: 127.0.0.1:$p is already in use (another demo or program?); stop it, or set REPLIKIT_WWW_PORT / REPLIKIT_CLUSTER_PORT"
    exit 1
  fi
done

if [ "${REPLIKIT_START_NO_BUILD:-}" != 1 ]; then
  bash scripts/bootstrap.sh build
  if [ ! -f dist/replikit.wasm ] || [ -n "$(find src js Cargo.toml Cargo.lock -newer dist/BUILD -print -quit 2>/dev/null)" ]; then
    node scripts/build.mjs
  fi
  echo "start: building replikit-server (the gateway and dev cluster)"
  cargo build -p replikit-server --quiet
fi

work=$(mktemp -d)
cluster=""; www=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$www" ] && kill -TERM "$www" 2>/dev/null || true
  [ -n "$cluster" ] && kill -TERM "$cluster" 2>/dev/null || true
  [ -n "$www" ] && wait "$www" 2>/dev/null || true
  [ -n "$cluster" ] && wait "$cluster" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "start: stopping the dashboard and the dev cluster"; cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# Both children read a FIFO whose only writer is this script (fd 3): if this script dies, even by SIGKILL,
# they see end-of-file and stop, so nothing is left behind.
mkfifo "$work/lifeline"
echo "start: starting the dev cluster (primary n0 + replicas n1, n2, synchronous replication)"
"$server" dev-cluster --port "$cluster_port" --replication sync --json --stop-on-stdin-close \
  --state-file "$state" <"$work/lifeline" >"$work/cluster.json" 2>"$work/cluster.log" &
cluster=$!
exec 3>"$work/lifeline"
for _ in $(seq 1 600); do
  [ -s "$work/cluster.json" ] && break
  kill -0 "$cluster" 2>/dev/null || { cat "$work/cluster.log"; echo "start: the dev cluster failed to start"; exit 1; }
  sleep 0.1
done
[ -s "$work/cluster.json" ] || { cat "$work/cluster.log"; echo "start: the dev cluster did not start in 60 s"; exit 1; }

REPLIKIT_CLUSTER_FILE="$work/cluster.json" REPLIKIT_WWW_PORT="$www_port" REPLIKIT_WWW_READY_FILE="$work/url" \
  node scripts/serve-www.mjs --stop-on-stdin-close <"$work/lifeline" 3>&- &
www=$!
for _ in $(seq 1 100); do
  [ -s "$work/url" ] && break
  kill -0 "$www" 2>/dev/null || { echo "start: the dashboard server failed to start"; exit 1; }
  sleep 0.1
done
url=$(cat "$work/url")
endpoints=$(sed -n 's/.*"endpoints": *\[\([^]]*\)\].*/\1/p' "$work/cluster.json" | tr -d '"' | sed 's/,/, /g')
ctl="$server ctl"
[ "$state" = "$default_state" ] || ctl="$ctl --state-file $state"

cat <<EOF

  Replikit demo: open $url
  (gateways: $endpoints)

  Three things to try:
    1. Kill n0 (Operator column), then promote n1: the chart shows writes moving from n0 to n1.
    2. Take the client offline and add a note: it is "pending" until you go back online, then it syncs.
    3. In another terminal: $ctl promote n1
       The table shows n1 as primary within a second; n0 stays up on the old term (split brain) and the
       client ignores it for writes. "rejoin n0" turns it into a replica of n1.

  Ctrl-C stops the dashboard and the dev cluster.

EOF

set +e
wait -n "$cluster" "$www"
echo "start: $(kill -0 "$cluster" 2>/dev/null && echo "the dashboard server" || echo "the dev cluster") stopped; stopping the rest"
[ -s "$work/cluster.log" ] && tail -n 5 "$work/cluster.log"
exit 1
