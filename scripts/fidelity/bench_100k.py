"""Scale check (not part of the pytest run): seed a 100,000-file repo through the official
client's upload_folder, then page through its recursive listing and report timings.

    HUB_EMULATOR=target/release/hub-emulator python scripts/fidelity/bench_100k.py [--files N]
"""

import argparse
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from emulator_proc import Emulator  # noqa: E402


def make_tree(root, total):
    """One folder of 10,000 files, the rest nested two levels deep, 100 files per folder."""
    flat = min(10_000, total)
    os.makedirs(os.path.join(root, "flat"))
    for i in range(flat):
        with open(os.path.join(root, "flat", f"f{i:05d}.txt"), "w") as f:
            f.write(f"flat {i}\n")
    n = flat
    a = 0
    while n < total:
        for b in range(30):
            d = os.path.join(root, "nest", f"a{a:02d}", f"b{b:02d}")
            os.makedirs(d)
            for i in range(min(100, total - n)):
                with open(os.path.join(d, f"f{i:03d}.txt"), "w") as f:
                    f.write(f"nest {a} {b} {i}\n")
            n += min(100, total - n)
            if n >= total:
                break
        a += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=0,
                    help="commit in chunks of N files with create_commit (like the Xet pipeline) instead of one commit")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Emulator(["--token", "alice:write:hf_bench"]) as emu:
        os.environ.update({"HF_ENDPOINT": emu.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": os.path.join(tmp, "hf"),
                           "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
        from huggingface_hub import HfApi

        src = os.path.join(tmp, "src")
        t = time.time()
        make_tree(src, args.files)
        print(f"generated {args.files} files in {time.time() - t:.1f} s")
        api = HfApi(token="hf_bench")
        api.create_repo("alice/many")
        t = time.time()
        if args.chunk:
            from huggingface_hub import CommitOperationAdd

            paths = sorted(os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs)
            for i in range(0, len(paths), args.chunk):
                ops = [CommitOperationAdd(p, os.path.join(src, p)) for p in paths[i:i + args.chunk]]
                api.create_commit("alice/many", operations=ops, commit_message=f"chunk {i // args.chunk}")
            print(f"{-(-len(paths) // args.chunk)} commits of {args.chunk} files: {time.time() - t:.1f} s")
        else:
            api.upload_folder(folder_path=src, repo_id="alice/many")
            print(f"upload_folder: {time.time() - t:.1f} s")

        url = f"{emu.url}/api/models/alice/many/tree/main?recursive=true"
        pages, entries, worst = 0, 0, 0.0
        t = time.time()
        while url:
            t0 = time.time()
            with urllib.request.urlopen(url, timeout=60) as r:
                body = r.read()
                link = r.headers.get("Link")
            worst = max(worst, time.time() - t0)
            pages += 1
            entries += body.count(b'"path"')
            url = link[1:link.index(">")] if link else None
        total = time.time() - t
        print(f"recursive listing: {entries} entries in {pages} pages, {total:.2f} s total, "
              f"{1000 * total / pages:.1f} ms/page avg, {1000 * worst:.1f} ms worst")
        t = time.time()
        files = api.list_repo_files("alice/many")
        print(f"list_repo_files: {len(files)} files in {time.time() - t:.2f} s")
        t = time.time()
        flat = list(api.list_repo_tree("alice/many", path_in_repo="flat"))
        print(f"list_repo_tree(flat): {len(flat)} entries in {time.time() - t:.2f} s")
        t = time.time()
        with urllib.request.urlopen(f"{emu.url}/api/models/alice/many/tree/main/flat?expand=true", timeout=60) as r:
            n = r.read().count(b'"lastCommit"')
        print(f"expanded page (lastCommit) of flat/: {n} entries in {1000 * (time.time() - t):.1f} ms")
        pid = emu.proc.pid
        rss = [l for l in open(f"/proc/{pid}/status") if l.startswith(("VmRSS", "VmHWM"))]
        print("emulator " + ", ".join(x.split()[0] + " " + x.split()[1] + " kB" for x in rss))
        du = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(emu.data) for f in fs)
        print(f"data dir: {du / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
