#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently, saying in one line what and why.
#   bash scripts/bootstrap.sh build    Rust wasm target, wasm-bindgen CLI, npm packages
#   bash scripts/bootstrap.sh test     the same, plus Chromium and ChromeDriver for the browser tests
# Everything project-local goes to .tools/ (gitignored); nothing here needs a prior `npm install`.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"
say() { echo "bootstrap: $*"; }

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
