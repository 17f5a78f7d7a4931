#!/usr/bin/env bash
# `npm test`: bootstraps what is missing, builds the package, then runs every test layer in turn and
# fails if any layer fails. Each layer is named as it starts; a summary closes the run.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/bootstrap.sh test || exit 1
node scripts/build.mjs || exit 1

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$root/.tools/bin/wasm-bindgen-test-runner"
export CHROMEDRIVER=/usr/bin/chromedriver
mkdir -p target/pack && rm -f target/pack/replikit-*.tgz
npm pack --silent --pack-destination target/pack >/dev/null || exit 1
export REPLIKIT_TARBALL="$root/$(ls target/pack/replikit-*.tgz)"

passed=(); failed=()
layer() {
  local name=$1; shift
  echo; echo "=== layer: $name"
  local start=$SECONDS
  if "$@"; then passed+=("$name"); echo "=== $name: ok ($((SECONDS - start)) s)"
  else failed+=("$name"); echo "=== $name: FAILED ($((SECONDS - start)) s)"; fi
}

lint() {
  cargo fmt --all --check &&
    cargo clippy --workspace --tests --quiet -- -D warnings &&
    cargo clippy -p replikit --target wasm32-unknown-unknown --tests --quiet -- -D warnings
}
layer "lint (cargo fmt --check, clippy -D warnings, native and wasm)" lint
layer "native (cargo test --workspace)" cargo test --workspace --quiet
# fake-indexeddb gives Node an IndexedDB; NODE_ARGS is split on commas, hence `=`.
layer "wasm in Node (wasm-bindgen-test)" env NODE_ARGS="--require=$root/node_modules/fake-indexeddb/auto/index.js" \
  cargo test -p replikit --target wasm32-unknown-unknown --test wasm_node
layer "wasm in headless Chromium (wasm-bindgen-test)" \
  cargo test -p replikit --target wasm32-unknown-unknown --test wasm_browser
# The JS cluster tests start real dev clusters with this binary.
cargo build -p replikit-server --quiet || exit 1
export REPLIKIT_SERVER_BIN="$root/target/debug/replikit-server"
layer "JS: package API, npm tarball, tsc, client and offline cache against real clusters" node --test --test-concurrency=1 tests/js/
layer "chaos: seeded faults under load, invariants checked on every node" node --test tests/chaos/
# Consensus failover (about 50 s): etcd and Patroni come from `bootstrap.sh patroni`, which only this layer needs.
layer "Patroni + etcd: the leader's machine lost, consensus failover" \
  bash -c 'bash scripts/bootstrap.sh patroni && node --test tests/patroni/'
layer "e2e: offline cache and outbox in headless Chromium" node --test --test-concurrency=1 tests/e2e/
layer "demo: dashboard in headless Chromium, failover example" node --test --test-concurrency=1 tests/dashboard/
layer "packaging: Vite app in headless Chromium" node --test tests/packaging/

echo
for n in "${passed[@]}"; do echo "  ok      $n"; done
for n in "${failed[@]+"${failed[@]}"}"; do echo "  FAILED  $n"; done
echo "layers: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
