#!/usr/bin/env bash
# Runs every test: style gates, cargo tests (unit + integration, emulator and cache included),
# the emulator fidelity suite (the official huggingface_hub client against the emulator) and
# the real-mount suite (FUSE mounts driven with ls/cp/find/sha256sum/tar/mmap/safetensors).
# Installs what it needs first. Needs root (or FUSE mount rights) and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_all

echo "== cargo fmt / clippy"
cargo fmt --all --check
cargo clippy --release --all-targets -- -D warnings

echo "== cargo test"
cargo test --release

# The official huggingface_hub client against the emulator, in the three worlds (see the
# docstring of scripts/fidelity/conftest.py): the client as installed (hf_xet) on today's Hub,
# a HF_HUB_DISABLE_XET=1 client on today's Hub, and that legacy client on a pre-Xet Hub (--no-xet).
for mode in xet noxet legacy; do
  echo "== fidelity suite, --hub-mode $mode (official huggingface_hub client against the emulator)"
  "$VENV/bin/python" -m pytest -q --timeout 600 scripts/fidelity --hub-mode "$mode"
done
# Today's Hub again, with every signed xorb and bridge URL bound to the range it was minted for
# (as xet-client documents for the real CAS): the official client must work there too.
for mode in xet noxet; do
  echo "== fidelity suite, --hub-mode $mode, emulator --range-bound-urls"
  HUBFS_FIDELITY_EMULATOR_ARGS=--range-bound-urls \
    "$VENV/bin/python" -m pytest -q --timeout 600 scripts/fidelity --hub-mode "$mode"
done

echo "== benchmark harness (verdicts and report; scripts/bench.sh runs the benchmark itself)"
"$VENV/bin/python" -m pytest -q scripts/bench/tests

echo "== mount suite (real FUSE mounts against the emulator)"
"$VENV/bin/python" -m pytest -q --timeout 600 tests/mount

# The same hubfs against a pre-Xet Hub (emulator --no-xet, client HF_HUB_DISABLE_XET=1): with Xet on,
# every large file reads through the CAS, so the bridge/LFS read path and its fault handling are
# exercised here; and with Xet on, large files are uploaded through the CAS, so the LFS upload
# path of writable mounts is exercised here (test_write_basic, the no-Xet cases of test_xet_write).
echo "== mount suite, legacy Hub subset (reads, faults, integrity, revisions, loaders, cache, LFS writes)"
HUBFS_TEST_LEGACY_HUB=1 "$VENV/bin/python" -m pytest -q --timeout 600 \
  tests/mount/test_faults.py tests/mount/test_integrity.py tests/mount/test_revisions.py \
  tests/mount/test_loaders.py tests/mount/test_hostile_hub.py tests/mount/test_write_basic.py \
  tests/mount/test_write_robust.py tests/mount/test_cache.py tests/mount/test_xet_write.py \
  tests/mount/test_readahead.py
