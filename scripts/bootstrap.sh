#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently, saying in one line what and why.
#   bash scripts/bootstrap.sh build    Rust wasm target, wasm-bindgen CLI, npm packages
#   bash scripts/bootstrap.sh test     the same, plus Chromium and ChromeDriver for the browser tests
#   bash scripts/bootstrap.sh patroni  etcd and Patroni only (npm run test:patroni, scripts/patroni/cluster.mjs)
# Everything project-local goes to .tools/ (gitignored); nothing here needs a prior `npm install`.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"
say() { echo "bootstrap: $*"; }

# Consensus failover (docs/OPERATIONS.md): etcd from Debian, Patroni 4 from PyPI in a project-local venv.
# Nothing else is needed for it, so this target returns before the wasm toolchain.
if [ "$what" = "patroni" ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    say "installing Debian's etcd-server and etcd-client (the Raft store Patroni elects its leader in)"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq etcd-server etcd-client >/dev/null
    # The package starts a system etcd on 2379; ours run on free ports in a temp dir.
    $sudo_ systemctl disable --now etcd >/dev/null 2>&1 || $sudo_ service etcd stop >/dev/null 2>&1 || true
  fi
  venv=.tools/patroni-venv
  if ! "$venv/bin/patroni" --version >/dev/null 2>&1; then
    say "installing Patroni 4 (patroni[etcd3], psycopg2-binary) into $venv (the consensus failover manager)"
    mkdir -p .tools
    # The system python, so the venv works for the postgres user who runs Patroni.
    /usr/bin/python3 -m venv "$venv" 2>/dev/null || {
      $sudo_ apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq python3-venv >/dev/null
      /usr/bin/python3 -m venv "$venv"
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'patroni[etcd3]>=4,<5' psycopg2-binary
  fi
  if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    say "installing PostgreSQL 15 (the nodes Patroni manages)"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql-15 >/dev/null
  fi
  exit 0
fi

# Rust's wasm target: the SDK compiles to wasm32-unknown-unknown.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "installing the Rust target wasm32-unknown-unknown (the SDK compiles to WebAssembly)"
  rustup target add wasm32-unknown-unknown
fi

# rustfmt and clippy: npm test's lint layer (cargo fmt --check, cargo clippy -D warnings).
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "installing the Rust component $component (the lint layer of npm test)"
    rustup component add "$component"
  fi
done

# wasm-bindgen CLI: must be exactly the version of the wasm-bindgen crate in Cargo.lock.
if [ ! -f Cargo.lock ]; then cargo generate-lockfile; fi
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(.tools/bin/wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want into .tools/ (must equal Cargo.lock's wasm-bindgen; takes ~3 min once)"
  # No --locked: the CLI's own lockfile pins a crate version this registry lacks (see shared TOOLCHAIN.md).
  cargo install wasm-bindgen-cli --version "$want" --root .tools --quiet
fi

# npm packages (binaryen's wasm-opt, esbuild, typescript, playwright-core, vite, fake-indexeddb).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dev dependencies exactly as package-lock.json pins them (wasm-opt, esbuild, tsc, playwright-core, vite)"
  # `npm ci`: exactly the lockfile, which it never rewrites, so a test run leaves `git status` clean. The lockfile
  # records rollup's optional packages for every platform (npm ci insists on finding them there).
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$what" = "test" ]; then
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    say "installing Debian's chromium and chromium-driver (headless browser tests; never a downloaded browser)"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && ! command -v initdb >/dev/null; then
    say "installing PostgreSQL 15 (the dev cluster behind the gateway tests)"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql-15 >/dev/null
  fi
fi
