#!/usr/bin/env bash
# Runs every test in the workspace: unit, property, snapshot, corpus and cross-process tests.
set -euo pipefail
cd "$(dirname "$0")"
exec cargo test --workspace --all-targets --locked "$@"
