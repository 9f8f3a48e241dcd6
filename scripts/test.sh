#!/usr/bin/env bash
# Runs every check and test of the workspace, on a fresh machine as on a developer's:
# formatting, clippy (warnings are errors), then unit, integration and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
