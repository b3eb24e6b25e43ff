#!/usr/bin/env python3
"""Creates the demo's sample repos through the official huggingface_hub client.

- `{ns}/tiny-model`: a real safetensors file (made with safetensors + numpy), config.json,
  tokenizer.json, tokenizer_config.json and a README.md model card;
- `{ns}/tiny-dataset` (dataset): CSV and JSONL splits in folders plus a binary .npy array.

Idempotent: existing repos are reused and unchanged files are not re-committed. Uploads go the
way the client as installed sends them: through Xet (hf_xet), unless HF_HUB_DISABLE_XET=1.

    HF_ENDPOINT=http://127.0.0.1:PORT HF_TOKEN=hf_... python scripts/seed_sample.py
"""

import argparse
import csv
import io
import json
import os
import sys
import tempfile

import numpy as np  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

MODEL_CARD = """---
license: apache-2.0
library_name: transformers
tags:
- hubfs-demo
---
# tiny-model

A two-layer toy model used by the hubfs demo. The weights are random.
"""

DATASET_CARD = """---
license: cc0-1.0
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train/*.csv
  - split: test
    path: data/test/*.csv
---
# tiny-dataset

Toy rows for the hubfs demo.
"""


def model_files(root):
    rng = np.random.default_rng(0)
    hidden, vocab = 64, 256
    tensors = {
        "embed.weight": rng.standard_normal((vocab, hidden), dtype=np.float32),
        "layers.0.weight": rng.standard_normal((hidden, hidden), dtype=np.float32),
        "layers.0.bias": np.zeros(hidden, dtype=np.float32),
        "layers.1.weight": rng.standard_normal((hidden, hidden), dtype=np.float32),
        "layers.1.bias": np.zeros(hidden, dtype=np.float32),
        "lm_head.weight": rng.standard_normal((vocab, hidden), dtype=np.float32).astype(np.float16),
    }
    save_file(tensors, os.path.join(root, "model.safetensors"), metadata={"format": "np"})
    config = {"model_type": "tiny", "hidden_size": hidden, "vocab_size": vocab, "num_hidden_layers": 2,
              "torch_dtype": "float32", "architectures": ["TinyForCausalLM"]}
    vocab_map = {f"<{i}>": i for i in range(vocab)}
    tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                 "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
                 "decoder": None, "model": {"type": "WordLevel", "vocab": vocab_map, "unk_token": "<0>"}}
    tokenizer_config = {"model_max_length": 128, "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<0>"}
    for name, obj in [("config.json", config), ("tokenizer.json", tokenizer),
                      ("tokenizer_config.json", tokenizer_config)]:
        with open(os.path.join(root, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write(MODEL_CARD)


def dataset_files(root):
    rng = np.random.default_rng(1)
    for split, n in [("train", 200), ("test", 50)]:
        d = os.path.join(root, "data", split)
        os.makedirs(d)
        rows = [{"id": i, "text": f"sample {split} {i}", "label": int(rng.integers(0, 2))} for i in range(n)]
        with open(os.path.join(d, f"{split}-00000-of-00001.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            w.writeheader()
            w.writerows(rows)
        with open(os.path.join(d, f"{split}.jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    os.makedirs(os.path.join(root, "features"))
    np.save(os.path.join(root, "features", "embeddings.npy"), rng.standard_normal((250, 32), dtype=np.float32))
    with open(os.path.join(root, "README.md"), "w") as f:
        f.write(DATASET_CARD)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("HF_ENDPOINT"))
    ap.add_argument("--token", default=os.environ.get("HF_TOKEN"))
    ap.add_argument("--namespace", help="default: the token's user")
    args = ap.parse_args()
    if not args.endpoint or not args.token:
        sys.exit("seed_sample.py: need --endpoint/HF_ENDPOINT and --token/HF_TOKEN")
    api = HfApi(endpoint=args.endpoint, token=args.token)
    ns = args.namespace or api.whoami()["name"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, repo_type, make in [("tiny-model", "model", model_files), ("tiny-dataset", "dataset", dataset_files)]:
            repo_id = f"{ns}/{name}"
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            make(folder)
            api.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
            info = api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type=repo_type,
                                     commit_message=f"Add {name} sample files")
            print(f"{repo_type:8} {repo_id} @ {info.oid[:12]}")


if __name__ == "__main__":
    main()
