#!/usr/bin/env bash
# Demo of the Hub emulator: builds, starts an emulator, seeds the sample repos with the official
# client, and shows them (listings, metadata, a download, a safetensors load). Pass hub-emulator
# flags to shape the network, e.g. `scripts/emulator-demo.sh --bandwidth 50M --latency-ms 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_all
source scripts/lib/emulator.sh
start_emulator "$@"
# Keep the demo's downloads out of the user's own Hugging Face cache.
export HF_HOME="$EMULATOR_DATA/hf-home" HF_HUB_DISABLE_PROGRESS_BARS=1

"$VENV/bin/python" scripts/seed_sample.py

echo
echo "== the sample repos, seen through huggingface_hub"
"$VENV/bin/python" - <<'PY'
import os
from huggingface_hub import HfApi, hf_hub_download
from safetensors import safe_open

api = HfApi()
user = api.whoami()["name"]
print("models:  ", [m.id for m in api.list_models(author=user)])
print("datasets:", [d.id for d in api.list_datasets(author=user)])
for repo_id, repo_type in [(f"{user}/tiny-model", "model"), (f"{user}/tiny-dataset", "dataset")]:
    info = api.repo_info(repo_id, repo_type=repo_type, files_metadata=True)
    print(f"\n{repo_type} {repo_id} @ {info.sha}")
    for s in info.siblings:
        kind = f"lfs sha256 {s.lfs.sha256[:12]}" if s.lfs else f"git {s.blob_id[:12]}"
        print(f"  {s.size:>9}  {s.rfilename:40} {kind}")
config = hf_hub_download(f"{user}/tiny-model", "config.json")
print("\nconfig.json:", open(config).read().strip().replace("\n", " "))
weights = hf_hub_download(f"{user}/tiny-model", "model.safetensors")
with safe_open(weights, framework="np") as f:
    for k in f.keys():
        print(f"  tensor {k:18} {f.get_slice(k).get_shape()} {f.get_slice(k).get_dtype()}")
PY
echo
echo "emulator stats: $(curl -s "$EMULATOR_URL/_emulator/stats")"
