#!/usr/bin/env bash
# The hubfs demo, offline: builds, starts the bundled Hub emulator, creates a sample model and
# dataset repo with the official huggingface_hub client, then mounts them with hubfs and uses
# them as local directories (ls, cp, find, a safetensors mmap load). Everything is removed at
# exit. Extra arguments go to the emulator, e.g. `scripts/demo.sh --latency-ms 20 --bandwidth 50M`.
# The sample repos are uploaded with the client as installed (hf_xet: Xet storage, like on
# huggingface.co today); `scripts/demo.sh --no-xet` shows a legacy, LFS-only Hub instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_all
source scripts/lib/emulator.sh
start_emulator "$@"
export HF_HOME="$EMULATOR_DATA/hf-home" HF_HUB_DISABLE_PROGRESS_BARS=1
MNT="$EMULATOR_DATA/mnt"
CACHE="$EMULATOR_DATA/hubfs-cache"
cleanup() {
  for m in "$MNT/model" "$MNT/hub"; do
    mountpoint -q "$m" 2>/dev/null && "$HUBFS" unmount "$m" || true
  done
  stop_emulator
}
trap cleanup EXIT

"$VENV/bin/python" scripts/seed_sample.py
U=$EMULATOR_USER

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the sample repos, seen through huggingface_hub"
"$VENV/bin/python" - <<'PY'
from huggingface_hub import HfApi
api = HfApi()
user = api.whoami()["name"]
print("models:  ", [m.id for m in api.list_models(author=user)])
print("datasets:", [d.id for d in api.list_datasets(author=user)])
PY

step "hubfs mount $U/tiny-model $MNT/model"
mkdir -p "$MNT/model" "$MNT/hub"
time "$HUBFS" mount "$U/tiny-model" "$MNT/model" --cache-dir "$CACHE"
ls -l "$MNT/model"

step "cat config.json"
cat "$MNT/model/config.json"; echo

step "safetensors.safe_open on the mount (mmap: only the touched tensors are fetched)"
"$VENV/bin/python" - "$MNT/model/model.safetensors" <<'PY'
import sys
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    for name in f.keys():
        t = f.get_tensor(name)
        print(f"  {name:24} {str(t.shape):14} {t.dtype}  mean={t.mean():+.4f}")
PY

step "cp -r the whole repo to a local directory, and check it"
cp -r "$MNT/model" "$EMULATOR_DATA/copy"
( cd "$EMULATOR_DATA/copy" && sha256sum model.safetensors config.json )
diff -r "$MNT/model" "$EMULATOR_DATA/copy" && echo "identical"

step "hubfs status $MNT/model"
"$HUBFS" status "$MNT/model"

step "the whole Hub under one mount point: hubfs mount hf:// $MNT/hub"
"$HUBFS" mount hf:// "$MNT/hub" --cache-dir "$CACHE"
echo "\$ ls $MNT/hub/$U";                      ls "$MNT/hub/$U"
echo "\$ find $MNT/hub/datasets/$U/tiny-dataset"; find "$MNT/hub/datasets/$U/tiny-dataset"
CSV=$(find "$MNT/hub/datasets/$U/tiny-dataset" -name '*.csv' | sort | head -1)
echo "\$ head -3 $CSV"; head -3 "$CSV"
echo "\$ ls $MNT/hub/$U/tiny-model@main"; ls "$MNT/hub/$U/tiny-model@main"

step "emulator traffic: $(curl -s "$EMULATOR_URL/_emulator/stats" | "$VENV/bin/python" -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"], "requests,", s["bytes_served"], "file bytes served,", s.get("cas_bytes_received", 0), "bytes into the Xet CAS")')"
