# Shared set-up for scripts/*.sh: installs system packages, the Python venv and builds release.
# Sourced, not executed. Idempotent: a second run does nothing that is already done.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VENV=${VENV:-$ROOT/.venv}
export HF_HUB_DISABLE_TELEMETRY=1

# libfuse2: fusepy (HfFileSystem over fsspec.fuse, a benchmark contender) loads libfuse.so.2.
APT_PACKAGES=(curl fio attr psmisc libfuse2 fuse3)

setup_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt install ${missing[*]}"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== python venv at $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.sha"
  local want; want=$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/requirements.txt"
    echo "$want" > "$stamp"
  fi
}

setup_build() {
  echo "== cargo build --release"
  (cd "$ROOT" && cargo build --release --bins)
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  export HUB_EMULATOR="$target/release/hub-emulator"
  export HUBFS="$target/release/hubfs"
}

# fsx and pjdfstest (crates.io) for the writable-mount suites, into $HUBFS_FS_TOOLS.
setup_fs_tools() {
  export HUBFS_FS_TOOLS=${HUBFS_FS_TOOLS:-$ROOT/.tools}
  if [ ! -x "$HUBFS_FS_TOOLS/bin/fsx" ] || [ ! -x "$HUBFS_FS_TOOLS/bin/pjdfstest" ]; then
    echo "== cargo install fsx pjdfstest into $HUBFS_FS_TOOLS"
    cargo install --locked --root "$HUBFS_FS_TOOLS" fsx pjdfstest
  fi
}

# Garage (crates.io), the S3-compatible distributed store the shared-cache tests run as a 3-node
# cluster, into $HUBFS_FS_TOOLS/bin/garage. Built once (about 15 min on 2 cores with these
# features: the S3 API and sqlite; no lmdb, k2v or metrics), then reused.
GARAGE_VERSION=2.5.0
setup_garage() {
  export HUBFS_FS_TOOLS=${HUBFS_FS_TOOLS:-$ROOT/.tools}
  if ! "$HUBFS_FS_TOOLS/bin/garage" --version 2>/dev/null | grep -q ":$GARAGE_VERSION "; then
    echo "== cargo install garage $GARAGE_VERSION into $HUBFS_FS_TOOLS (once; ~15 min on 2 cores)"
    cargo install --locked --root "$HUBFS_FS_TOOLS" "garage@$GARAGE_VERSION" \
      --no-default-features --features sqlite,bundled-libs
  fi
}

setup_all() {
  setup_apt
  setup_venv
  setup_build
  setup_fs_tools
  setup_garage
}
