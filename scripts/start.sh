#!/usr/bin/env bash
# `npm start`: bootstraps and builds what is missing, starts the dev cluster (PostgreSQL primary + 2 standbys
# with synchronous replication, behind replikit-server gateways on 7100-7102, admin API on 7200), serves the
# dashboard in www/ on http://127.0.0.1:8080, and stops everything on Ctrl-C.
# `npm run start:couchdb`, which is `REPLIKIT_TOPOLOGY=multi-primary npm start`: the same with the multi-primary
# CouchDB-protocol dev cluster instead (server/couchdb/cluster.mjs: PouchDB Server nodes c0, c1, c2 on 7300-7302
# that all take writes and replicate to each other, admin API on 7400; no replikit-server, no PostgreSQL).
#   REPLIKIT_TOPOLOGY      primary-replica (default) or multi-primary
#   REPLIKIT_WWW_PORT      the dashboard's port (default 8080; 0 = a free one)
#   REPLIKIT_CLUSTER_PORT  the first node's port (default 7100, multi-primary 7300; the admin API is on that + 100;
#                          0 = free ports for every node and the admin API)
#   REPLIKIT_STATE_FILE    the dev cluster's state file (mode 0600: endpoints and the nodes' credentials). Default,
#                          per user and keyed by the port: dev-cluster-<port>.json (the one `replikit-server ctl
#                          --port <port>` reads; multi-primary: couch-cluster-<port>.json) in $XDG_RUNTIME_DIR/replikit,
#                          else in ${TMPDIR:-/tmp}/replikit-<uid> (mode 0700)
#   REPLIKIT_START_NO_BUILD=1  skip bootstrap and builds (the demo tests: scripts/test.sh built everything)
# The cluster's nodes require credentials (the gateways a generated token, the PouchDB nodes an admin user) and allow
# only the dashboard's origin (CORS); the dashboard server hands the credentials to the dashboard page alone.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${REPLIKIT_SERVER_BIN:-target/debug/replikit-server}

topology=${REPLIKIT_TOPOLOGY:-primary-replica}
case "$topology" in
  primary-replica) default_port=7100; state_name=dev-cluster; cluster_cmd=dev-cluster ;;
  multi-primary) default_port=7300; state_name=couch-cluster; cluster_cmd=couchdb/cluster.mjs ;;
  *) echo "replikit: REPLIKIT_TOPOLOGY must be primary-replica or multi-primary, not '$topology'"; exit 2 ;;
esac
www_port=${REPLIKIT_WWW_PORT:-8080}
cluster_port=${REPLIKIT_CLUSTER_PORT:-$default_port}
# The dev cluster's default state file, as `replikit-server ctl` finds it (server/src/cluster/state.rs): in a
# per-user directory, created mode 0700 and refused when it is not ours, keyed by the port.
if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ]; then state_dir=$XDG_RUNTIME_DIR/replikit
else state_dir=${TMPDIR:-/tmp}/replikit-$(id -u); fi
default_state=$state_dir/$state_name-$cluster_port.json
[ "$cluster_port" = 0 ] && default_state=$state_dir/$state_name-start$$.json
if [ -z "${REPLIKIT_STATE_FILE:-}" ]; then
  mkdir -p -m 0700 "$state_dir"
  if [ -L "$state_dir" ] || [ ! -O "$state_dir" ]; then
    echo "replikit: $state_dir is not a directory of yours; remove it or set REPLIKIT_STATE_FILE"; exit 1
  fi
  chmod 0700 "$state_dir"
fi
state=${REPLIKIT_STATE_FILE:-$default_state}

# Refuse clearly when a demo (or another dev cluster) already runs, or a port we need is taken.
if [ -f "$state" ]; then
  pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$state" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa "$cluster_cmd" "/proc/$pid/cmdline" 2>/dev/null; then
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
  if [ "$topology" = primary-replica ]; then
    echo "start: building replikit-server (the gateway and dev cluster)"
    cargo build -p replikit-server --quiet
  fi
fi

# The dashboard's port is chosen now: the cluster's nodes allow only its origin.
if [ "$www_port" = 0 ]; then
  www_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
fi
origins=(--cors-origin "http://127.0.0.1:$www_port" --cors-origin "http://localhost:$www_port")

work=$(mktemp -d)
cluster=""; www=""
lifeline=""
running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
cleanup() {
  trap - EXIT INT TERM
  [ -n "$www" ] && kill -TERM "$www" 2>/dev/null || true
  if [ -n "$cluster" ] && [ -n "$lifeline" ] && [ "$topology" = multi-primary ]; then
    # Closing the lifeline stops the CouchDB cluster as SIGTERM would, but without cutting short a stop that a
    # terminal's Ctrl-C (SIGINT to the whole process group) already began: a second signal makes it exit at once.
    exec 3>&-
    for _ in $(seq 1 100); do running "$cluster" || break; sleep 0.1; done
  fi
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
if [ "$topology" = multi-primary ]; then
  echo "start: starting the multi-primary dev cluster (PouchDB Server nodes c0, c1, c2: all writable, replicating to each other)"
  node server/couchdb/cluster.mjs --port "$cluster_port" --stop-on-stdin-close "${origins[@]}" \
    --state-file "$state" <"$work/lifeline" >"$work/cluster.json" 2>"$work/cluster.log" &
else
  echo "start: starting the dev cluster (primary n0 + replicas n1, n2, synchronous replication)"
  "$server" dev-cluster --port "$cluster_port" --replication sync --json --stop-on-stdin-close "${origins[@]}" \
    --state-file "$state" <"$work/lifeline" >"$work/cluster.json" 2>"$work/cluster.log" &
fi
cluster=$!
exec 3>"$work/lifeline"
lifeline=open
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
if [ "$state" = "$state_dir/$state_name-7100.json" ]; then :
elif [ "$state" = "$default_state" ] && [ "$cluster_port" != 0 ]; then ctl="$ctl --port $cluster_port"
else ctl="$ctl --state-file $state"; fi

if [ "$topology" = multi-primary ]; then
  admin=$(sed -n 's/.*"adminUrl": *"\([^"]*\)".*/\1/p' "$work/cluster.json")
  cat <<EOF

  Replikit demo, multi-primary (CouchDB protocol): open $url
  (nodes: $endpoints; admin API: $admin; the admin token and the nodes' credentials are in $state)

  Three things to try:
    1. Kill the node marked "session writes" (Operator column): the next write goes to another node at once and
       nothing is promoted. Start it again: it catches up with what was written meanwhile.
    2. Take the client offline and add a note: it is "pending" until you go back online, then it syncs.
    3. Hang a node: its requests time out, the client marks it down and carries on with the others; unhang it.

  Ctrl-C stops the dashboard and the dev cluster.

EOF
else
  cat <<EOF

  Replikit demo: open $url
  (gateways: $endpoints; they require the token in $state, field gatewayToken)

  Three things to try:
    1. Kill n0 (Operator column), then promote n1: the chart shows writes moving from n0 to n1.
    2. Take the client offline and add a note: it is "pending" until you go back online, then it syncs.
    3. In another terminal: $ctl promote n1
       The table shows n1 as primary within a second; n0 stays up on the old term (split brain) and the
       client ignores it for writes. "rejoin n0" turns it into a replica of n1.

  Ctrl-C stops the dashboard and the dev cluster.

EOF
fi

set +e
wait -n "$cluster" "$www"
echo "start: $(kill -0 "$cluster" 2>/dev/null && echo "the dashboard server" || echo "the dev cluster") stopped; stopping the rest"
[ -s "$work/cluster.log" ] && tail -n 5 "$work/cluster.log"
exit 1
