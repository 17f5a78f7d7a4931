#!/usr/bin/env bash
# `npm start`: bootstraps and builds what is missing, starts a dev cluster (PostgreSQL primary + 2 standbys
# behind replikit-server gateways) on free loopback ports, runs the Node example against it, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh build
if [ ! -f dist/replikit.wasm ] || [ -n "$(find src js Cargo.toml Cargo.lock -newer dist/BUILD -print -quit 2>/dev/null)" ]; then
  node scripts/build.mjs
fi
echo "start: building replikit-server (the gateway and dev cluster)"
cargo build -p replikit-server --quiet

work=$(mktemp -d)
target/debug/replikit-server dev-cluster --port 0 --json --state-file "$work/state.json" >"$work/out" 2>"$work/log" &
cluster=$!
cleanup() { kill -TERM "$cluster" 2>/dev/null || true; wait "$cluster" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 600); do
  [ -s "$work/out" ] && break
  kill -0 "$cluster" 2>/dev/null || { cat "$work/log"; echo "start: the dev cluster failed to start"; exit 1; }
  sleep 0.1
done
endpoints=$(node -e 'const i = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(i.endpoints.join(" "))' "$work/out")
set -- $endpoints
echo "start: dev cluster up: primary $1, replicas $2 $3"
REPLIKIT_PRIMARY=$1 REPLIKIT_REPLICAS="$2,$3" node examples/hello.mjs
