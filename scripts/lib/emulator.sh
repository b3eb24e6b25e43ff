# Starts a hub-emulator in the background for demo and bench scripts. Sourced, not executed.
#
#   source scripts/lib/emulator.sh
#   start_emulator [hub-emulator flags...]   # e.g. --bandwidth 50M --latency-ms 20
#   ... use $HF_ENDPOINT / $HF_TOKEN with any Hub client ...
#   stop_emulator                            # also run automatically on exit
#
# Exports EMULATOR_URL, EMULATOR_CDN_URL, EMULATOR_PID, EMULATOR_DATA, HF_ENDPOINT and HF_TOKEN.
# The client keeps Xet on (hf_xet as installed), unless the flags include --no-xet (a legacy,
# pre-Xet Hub), where HF_HUB_DISABLE_XET=1 is exported: hf_xet cannot upload to such a Hub. Without --token flags it creates user $EMULATOR_USER (default
# "demo") with the write token $EMULATOR_TOKEN (default hf_demo_write_token). State lives in
# $EMULATOR_DATA (default: a fresh temp dir, removed by stop_emulator unless it was given).

start_emulator() {
  local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  local bin=${HUB_EMULATOR:-${CARGO_TARGET_DIR:-$root/target}/release/hub-emulator}
  if [ ! -x "$bin" ]; then
    echo "start_emulator: $bin not found (cargo build --release)" >&2
    return 1
  fi
  export EMULATOR_USER=${EMULATOR_USER:-demo}
  export EMULATOR_TOKEN=${EMULATOR_TOKEN:-hf_demo_write_token}
  local args=("$@")
  if [ -n "${EMULATOR_DATA:-}" ]; then
    _EMULATOR_OWN_DATA=0
  else
    EMULATOR_DATA=$(mktemp -d "${TMPDIR:-/tmp}/hub-emulator.XXXXXX")
    _EMULATOR_OWN_DATA=1
  fi
  export EMULATOR_DATA
  mkdir -p "$EMULATOR_DATA"
  if ! printf '%s\n' "${args[@]}" | grep -qx -- '--token\|--token-file'; then
    # A token file keeps the secret out of the process list.
    (umask 077; echo "$EMULATOR_USER:write:$EMULATOR_TOKEN" > "$EMULATOR_DATA/tokens")
    args+=(--token-file "$EMULATOR_DATA/tokens")
  fi
  local ready="$EMULATOR_DATA/ready.txt"
  rm -f "$ready"
  "$bin" --data "$EMULATOR_DATA/store" "${args[@]}" >"$ready" 2>>"$EMULATOR_DATA/emulator.log" &
  export EMULATOR_PID=$!
  trap stop_emulator EXIT
  local i line=""
  for i in $(seq 200); do
    line=$(head -n1 "$ready" 2>/dev/null || true)
    case "$line" in listening\ on*\)) break ;; esac
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
      echo "start_emulator: hub-emulator exited; see $EMULATOR_DATA/emulator.log" >&2
      return 1
    fi
    sleep 0.1
  done
  if [[ ! "$line" =~ ^listening\ on\ (http://[^ ]+)\ \(cdn\ (http://[^ ]+)\)$ ]]; then
    echo "start_emulator: no ready line after 20 s" >&2
    stop_emulator
    return 1
  fi
  export EMULATOR_URL=${BASH_REMATCH[1]} EMULATOR_CDN_URL=${BASH_REMATCH[2]}
  export HF_ENDPOINT=$EMULATOR_URL HF_TOKEN=$EMULATOR_TOKEN
  if printf '%s\n' "${args[@]}" | grep -qx -- '--no-xet'; then
    export HF_HUB_DISABLE_XET=1
  else
    unset HF_HUB_DISABLE_XET
  fi
  echo "hub-emulator at $EMULATOR_URL (cdn $EMULATOR_CDN_URL), data in $EMULATOR_DATA"
}

stop_emulator() {
  if [ -n "${EMULATOR_PID:-}" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
  fi
  unset EMULATOR_PID
  if [ "${_EMULATOR_OWN_DATA:-0}" = 1 ] && [ -n "${EMULATOR_DATA:-}" ]; then
    rm -rf "$EMULATOR_DATA"
    unset EMULATOR_DATA
  fi
}
