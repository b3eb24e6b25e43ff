#!/usr/bin/env bash
# The benchmark of issue 4, in one command: installs what it needs, builds release, seeds a Hub
# emulator through the official client (reused while the seed definition is unchanged: data in
# bench/work/, ~11 GiB), then measures hubfs against curl, huggingface_hub, HfFileSystem over
# fsspec.fuse and a local copy on a shaped (--latency-ms 20 --bandwidth 50M) and an unshaped
# emulator, and hubfs's writes (issue 5) against upload_file / upload_folder on emulators of
# their own. Writes bench/results/<UTC timestamp>.md, latest.md, latest.png and the README's
# performance section. Needs root (drop_caches, FUSE mounts) and /dev/fuse; about 15 minutes of
# measuring after the build and the seed.
# Arguments go to the harness: `scripts/bench.sh --help`, e.g. `--only fio --no-readme`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
# The benchmark seeds and reads through the LFS path (its contenders predate Xet); the Xet
# workload (`--only xet-read`) turns Xet back on for its own client runs and emulators.
export HF_HUB_DISABLE_XET=1
# Not setup_all: fsx and pjdfstest (minutes of cargo install) serve the tests, not the benchmark.
setup_apt
setup_venv
setup_build
# Garage for the cluster workload (shared cache): built once into .tools, ~15 min.
setup_garage
cd scripts
exec "$VENV/bin/python" -m bench "$@"
