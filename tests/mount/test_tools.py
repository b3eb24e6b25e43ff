"""Everyday tools on a mounted repo see exactly the repo's files and bytes."""

import hashlib
import os
import subprocess
import tarfile

from conftest import WRITE_TOKEN, bytes_served


def all_files(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = p
    return out


def test_ls_find_du_stat_match_the_repo(seeded, originals, mount):
    m = mount("alice/tiny-model@v1.0")
    orig = originals / "tiny-model"
    expected = sorted(all_files(orig)) + [".gitattributes"]
    found = subprocess.run(["find", ".", "-type", "f"], cwd=m.path, capture_output=True, text=True, check=True)
    assert sorted(p[2:] for p in found.stdout.splitlines()) == sorted(expected)
    ls = subprocess.run(["ls", "-lR", str(m.path)], capture_output=True, text=True, check=True)
    assert "model.safetensors" in ls.stdout and "file119.txt" in ls.stdout
    du = subprocess.run(["du", "-sb", "--apparent-size", "."], cwd=m.path, capture_output=True, text=True, check=True)
    total = sum(os.path.getsize(p) for p in all_files(orig).values())
    gitattributes = os.path.getsize(m / ".gitattributes")
    assert int(du.stdout.split()[0]) >= total + gitattributes
    for rel, p in all_files(orig).items():
        st = os.stat(m / rel)
        assert st.st_size == os.path.getsize(p), rel
        assert st.st_mode & 0o777 == 0o444
    assert os.stat(m / "many").st_mode & 0o040000
    # Directory with more entries than one tree page.
    assert len(os.listdir(m / "many")) == 120


def test_cp_r_and_diff_r_are_byte_exact(seeded, originals, mount, tmp_path):
    m = mount("alice/tiny-model@v1.0")
    dest = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(m.path), str(dest)], check=True)
    os.remove(dest / ".gitattributes")
    subprocess.run(["diff", "-r", str(originals / "tiny-model"), str(dest)], check=True)


def test_sha256sum_matches_and_tar_roundtrips(seeded, originals, mount, tmp_path):
    m = mount("alice/tiny-model@v1.0")
    for rel in ["big.bin", "model.safetensors", "unicodé ñ.txt", "hash#file.txt", "per%cent.txt", "empty.txt",
                "names with spaces.txt", "nested/a/b/c/deep.txt"]:
        out = subprocess.run(["sha256sum", rel], cwd=m.path, capture_output=True, text=True, check=True)
        assert out.stdout.split()[0] == hashlib.sha256((originals / "tiny-model" / rel).read_bytes()).hexdigest(), rel
    tarball = tmp_path / "repo.tar"
    subprocess.run(["tar", "cf", str(tarball), "-C", str(m.path), "nested", "many", "config.json"], check=True)
    with tarfile.open(tarball) as t:
        names = t.getnames()
        assert "many/file042.txt" in names
        assert t.extractfile("config.json").read() == (originals / "tiny-model/config.json").read_bytes()


def test_reads_at_boundaries_eof_and_past_eof(seeded, originals, mount):
    m = mount("alice/tiny-model@v1.0")
    data = (originals / "tiny-model/big.bin").read_bytes()
    size = len(data)
    block = 128 << 10
    with open(m / "big.bin", "rb") as f:
        for off, n in [(0, 1), (block - 1, 2), (block, block), (3 * block - 7, 3 * block + 14), (size - 5, 5),
                       (size - 5, 100), (size, 10), (size + 1000, 10), (12345678, 4096)]:
            f.seek(off)
            assert f.read(n) == data[off:off + n], (off, n)
    with open(m / "empty.txt", "rb") as f:
        assert f.read() == b""
        f.seek(100)
        assert f.read(10) == b""


def test_a_small_read_in_a_big_file_moves_little(seeded, originals, mount, emulator):
    m = mount("alice/tiny-model@v1.0")
    before = bytes_served(emulator)
    with open(m / "big.bin", "rb") as f:
        f.seek(20 << 20)
        assert f.read(4096) == (originals / "tiny-model/big.bin").read_bytes()[20 << 20:(20 << 20) + 4096]
    moved = bytes_served(emulator) - before
    # One cache block (128 KiB) plus the kernel's read-around; far below the 40 MiB file.
    assert 4096 <= moved <= 1 << 20, moved
