#!/usr/bin/env bash
# Runs every test: cargo tests (unit + integration) and the Python suites (emulator fidelity
# with the official huggingface_hub client). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_all

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings

echo "== cargo test"
cargo test --release

echo "== fidelity suite (official huggingface_hub client against the emulator)"
"$VENV/bin/python" -m pytest -q scripts/fidelity
