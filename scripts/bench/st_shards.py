"""A sharded safetensors checkpoint loaded as a multi-threaded loader does it, timed in its own
process (imports excluded): one thread per shard, `safe_open` (mmap) + `get_tensor` of every
tensor of its shard.

  st_shards.py DIR THREADS              the shards named by DIR/model.safetensors.index.json
  st_shards.py hf:REPO THREADS          snapshot_download first (download-then-load), then as above

Prints one JSON line: seconds to the download's end (0 without one), to the end of the load,
and the bytes of the tensors loaded."""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from safetensors import safe_open

INDEX = "model.safetensors.index.json"


def load_shard(path: Path) -> int:
    loaded = 0
    with safe_open(str(path), "np") as f:
        for name in f.keys():
            loaded += f.get_tensor(name).nbytes
    return loaded


def main():
    source, threads = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    downloaded = 0.0
    if source.startswith("hf:"):
        from huggingface_hub import snapshot_download

        t0 = time.perf_counter()
        source = snapshot_download(source[3:])
        downloaded = time.perf_counter() - t0
    folder = Path(source)
    shards = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        loaded = sum(pool.map(load_shard, [folder / s for s in shards]))
    print(json.dumps({"download_s": downloaded, "seconds": time.perf_counter() - t0, "bytes": loaded}))


if __name__ == "__main__":
    main()
