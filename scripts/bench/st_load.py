"""A safetensors load as a user does it, timed in its own process (imports excluded).

  st_load.py PATH first TENSOR      safe_open (mmap) + get_tensor of one tensor
  st_load.py PATH all               safe_open + get_tensor of every tensor
  st_load.py hf:REPO/FILE MODE ...  hf_hub_download first (download-then-load), then as above

Prints one JSON line: seconds to the download's end (0 without one), to the end of the load,
and the bytes of the tensors loaded."""

import json
import sys
import time

from safetensors import safe_open


def main():
    source, mode, *rest = sys.argv[1:]
    t0 = time.perf_counter()
    downloaded = 0.0
    if source.startswith("hf:"):
        from huggingface_hub import hf_hub_download

        repo, _, file = source[3:].rpartition("/")
        t0 = time.perf_counter()
        source = hf_hub_download(repo, file)
        downloaded = time.perf_counter() - t0
    loaded = 0
    with safe_open(source, "np") as f:
        names = [rest[0]] if mode == "first" else list(f.keys())
        for name in names:
            loaded += f.get_tensor(name).nbytes
    print(json.dumps({"download_s": downloaded, "seconds": time.perf_counter() - t0, "bytes": loaded}))


if __name__ == "__main__":
    main()
