"""The hubfs benchmark (issue 4, and issue 5's writes): hubfs against curl, huggingface_hub,
HfFileSystem over fsspec.fuse and a local copy, on a shaped and an unshaped Hub emulator. Run it
through `scripts/bench.sh`; `python -m bench --help` (from scripts/) lists the knobs."""
