"""The benchmark's repos, created through the official huggingface_hub client, and their local
copies (the "local copy on disk" contender). Content is deterministic, so a run whose seed
definition is unchanged reuses the emulator data and the copies under bench/work/ instead of
spending minutes regenerating and uploading them.

- `bench/lfs-files`: four 1 GiB LFS files of seeded random bytes (sequential reads, fio);
- `bench/model`: a ~1 GiB safetensors model of 192 tensors shaped like a small LLM, plus a
  config.json (safetensors loads, mount to first byte);
- `bench/sharded`: a checkpoint of four 256 MiB safetensors shards and their index, as a
  sharded model is published (4-thread loads);
- dataset `bench/many-files`: 100,000 small files, 90,000 in `nested/AA/BB/` folders of 100 and
  10,000 in the single folder `flat/` (metadata)."""

import hashlib
import inspect
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .emulator import WRITE_TOKEN, Emulator
from .util import GIB, MIB, WORK, fresh_dir, log

LFS_REPO = "bench/lfs-files"
LFS_FILES = [f"file{i}.bin" for i in range(4)]
LFS_SIZE = GIB
MODEL_REPO = "bench/model"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DATASET_REPO = "bench/many-files"
SHARDED_REPO = "bench/sharded"
SHARDS = 4
SHARD_TENSORS = 16  # per shard: 16 tensors of 16 MiB = 256 MiB
SHARD_INDEX = "model.safetensors.index.json"
# A 10 MiB tensor from the middle of the file: the "first tensor" a lazy loader touches.
FIRST_TENSOR = "model.layers.10.mlp.up_proj.weight"

HIDDEN = 1024
FFN = 2560
LAYERS = 21
VOCAB = 8192
NESTED = (30, 30, 100)  # 30 x 30 folders of 100 files = 90,000
FLAT = 10_000

ORIGINALS = WORK / "originals"
EMULATOR_DATA = WORK / "emulator"
STAMP = WORK / "seed.json"


@dataclass
class Facts:
    """What the workloads need to know about the seeded repos."""
    lfs_paths: list        # local copies of the LFS files
    model_path: str        # local copy of the model
    model_size: int
    tensors: dict          # name -> nbytes
    dataset_files: int
    dataset_dirs: int      # folders, the repo root excluded
    # Local copies of the sharded checkpoint's shards (a stamp from before it has none).
    shard_paths: list = field(default_factory=list)


def _definition_hash() -> str:
    """Changes whenever what is seeded changes: the generators' code and the constants they
    use (edits elsewhere in this module do not force a re-seed)."""
    parts = [inspect.getsource(f) for f in (_write_random, _model_tensors, _seed_lfs, _seed_model, _seed_dataset,
                                            _seed_sharded, shard_names)]
    parts.append(repr((LFS_REPO, LFS_FILES, LFS_SIZE, MODEL_REPO, MODEL_FILE, CONFIG_FILE, DATASET_REPO,
                       HIDDEN, FFN, LAYERS, VOCAB, NESTED, FLAT, SHARDED_REPO, SHARDS, SHARD_TENSORS)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _write_random(path: Path, size: int, seed: int):
    rng = np.random.default_rng(seed)
    chunk = 64 * MIB
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(rng.bytes(n))
            left -= n


def _model_tensors() -> dict:
    rng = np.random.default_rng(1234)

    def t(*shape):
        return rng.random(shape, dtype=np.float32)

    tensors = {"model.embed_tokens.weight": t(VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"{p}.self_attn.{name}.weight"] = t(HIDDEN, HIDDEN)
        tensors[f"{p}.mlp.gate_proj.weight"] = t(FFN, HIDDEN)
        tensors[f"{p}.mlp.up_proj.weight"] = t(FFN, HIDDEN)
        tensors[f"{p}.mlp.down_proj.weight"] = t(HIDDEN, FFN)
        tensors[f"{p}.input_layernorm.weight"] = t(HIDDEN)
        tensors[f"{p}.post_attention_layernorm.weight"] = t(HIDDEN)
    tensors["model.norm.weight"] = t(HIDDEN)
    tensors["lm_head.weight"] = t(VOCAB, HIDDEN)
    return tensors


def _seed_lfs(api):
    folder = fresh_dir(ORIGINALS / "lfs")
    for i, name in enumerate(LFS_FILES):
        _write_random(folder / name, LFS_SIZE, seed=100 + i)
    api.create_repo(LFS_REPO)
    api.upload_folder(repo_id=LFS_REPO, folder_path=str(folder), commit_message="four 1 GiB files")


def _seed_model(api) -> dict:
    from safetensors.numpy import save_file

    folder = fresh_dir(ORIGINALS / "model")
    tensors = _model_tensors()
    save_file(tensors, str(folder / MODEL_FILE), metadata={"format": "pt"})
    config = {"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": FFN,
              "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "torch_dtype": "float32"}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    api.create_repo(MODEL_REPO)
    api.upload_folder(repo_id=MODEL_REPO, folder_path=str(folder), commit_message="model")
    return {k: int(v.nbytes) for k, v in tensors.items()}


def shard_names() -> list:
    return [f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors" for i in range(SHARDS)]


def _seed_sharded(api) -> list:
    """Four shards of 16 float32 tensors of 16 MiB each and the index `from_pretrained` reads."""
    from safetensors.numpy import save_file

    folder = fresh_dir(ORIGINALS / "sharded")
    rng = np.random.default_rng(4321)
    weight_map = {}
    total = 0
    for s, name in enumerate(shard_names()):
        tensors = {f"model.layers.{s * SHARD_TENSORS + t}.weight": rng.random((4096, 1024), dtype=np.float32)
                   for t in range(SHARD_TENSORS)}
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in tensors})
        total += sum(int(v.nbytes) for v in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / SHARD_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    api.create_repo(SHARDED_REPO)
    api.upload_folder(repo_id=SHARDED_REPO, folder_path=str(folder), commit_message="sharded checkpoint")
    return [str(folder / n) for n in shard_names()]


def _seed_dataset(api) -> tuple[int, int]:
    folder = fresh_dir(WORK / "tmp-dataset")
    a_n, b_n, c_n = NESTED
    files = dirs = 0
    for a in range(a_n):
        for b in range(b_n):
            d = folder / "nested" / f"{a:02d}" / f"{b:02d}"
            d.mkdir(parents=True)
            for c in range(c_n):
                (d / f"{c:03d}.txt").write_text(f"row {a} {b} {c}\n")
                files += 1
    dirs = 1 + a_n + a_n * b_n
    flat = folder / "flat"
    flat.mkdir()
    for i in range(FLAT):
        (flat / f"item{i:05d}.json").write_text(f'{{"id": {i}}}\n')
        files += 1
    dirs += 1
    api.create_repo(DATASET_REPO, repo_type="dataset")
    api.upload_folder(repo_id=DATASET_REPO, repo_type="dataset", folder_path=str(folder),
                      commit_message="100k small files")
    shutil.rmtree(folder)
    return files, dirs


def ensure_seeded(log_dir: Path) -> Facts:
    """Seeds the emulator data and local copies unless an identical seed is already there."""
    want = _definition_hash()
    if STAMP.exists() and EMULATOR_DATA.exists():
        stamp = json.loads(STAMP.read_text())
        facts = Facts(**stamp["facts"])
        copies = [Path(p) for p in facts.lfs_paths + facts.shard_paths] + [Path(facts.model_path)]
        if stamp.get("definition") == want and all(p.exists() for p in copies):
            log("seed: reusing the seeded emulator data and local copies")
            return facts
    log("seed: generating content and uploading it with huggingface_hub (a few minutes)")
    STAMP.unlink(missing_ok=True)
    fresh_dir(EMULATOR_DATA)
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    from huggingface_hub import HfApi

    with Emulator("seed", EMULATOR_DATA, log_dir / "emulator-seed.log") as emu:
        api = HfApi(endpoint=emu.url, token=WRITE_TOKEN)
        _seed_lfs(api)
        log("seed: LFS files uploaded")
        tensors = _seed_model(api)
        log("seed: model uploaded")
        shard_paths = _seed_sharded(api)
        log("seed: sharded checkpoint uploaded")
        files, dirs = _seed_dataset(api)
        log("seed: dataset uploaded")
    model = ORIGINALS / "model" / MODEL_FILE
    facts = Facts(
        lfs_paths=[str(ORIGINALS / "lfs" / n) for n in LFS_FILES],
        model_path=str(model),
        model_size=model.stat().st_size,
        tensors=tensors,
        shard_paths=shard_paths,
        dataset_files=files,
        dataset_dirs=dirs,
    )
    STAMP.write_text(json.dumps({"definition": want, "facts": asdict(facts)}, indent=1))
    return facts
