#!/usr/bin/env bash
# `npm start`: bootstraps and builds what is missing, then runs the Node example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh build
if [ ! -f dist/replikit.wasm ] || [ -n "$(find src js Cargo.toml Cargo.lock -newer dist/BUILD -print -quit 2>/dev/null)" ]; then
  node scripts/build.mjs
fi
node examples/hello.mjs
