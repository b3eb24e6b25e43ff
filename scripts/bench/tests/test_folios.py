"""The folio census reads real page-frame flags: every page of a file just read is present,
and large folios, where the filesystem uses them, hold at least two pages each."""

import os

from bench.folios import PAGE, folios


def test_every_page_of_a_file_just_read_is_counted(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(os.urandom(64 * PAGE + 123))  # the partial last page is not counted
    path.read_bytes()
    f = folios(path)
    assert f.pages == 64
    assert f.absent == 0
    assert f.in_large <= f.pages
    assert f.in_large >= 2 * f.large
    assert ("4 KiB pages only" in f.describe()) == (f.large == 0)


def test_an_empty_file_has_no_pages(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    f = folios(path)
    assert (f.pages, f.large, f.large_share) == (0, 0, 0.0)
