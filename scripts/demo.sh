#!/usr/bin/env bash
# Quick start: install what airlock and its demo need, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm ci --no-audit --no-fund
npm run build
node --import tsx scripts/demo.ts
