#!/usr/bin/env bash
# The main job: installs missing Debian packages (as root), builds wisp,
# starts it and runs `wisp demo`, the seed's walkthrough with the real gcloud
# and kubectl (pods and the metadata server as root; the control-plane steps
# otherwise). wisp stays up with what the demo created; `bin/wisp down`
# stops it. State lives in $WISP_STATE (default ./.state).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)"
export WISP_STATE=${WISP_STATE:-$PWD/.state}
if [ "$(id -u)" = 0 ]; then bin/wisp up --nodes; else bin/wisp up; fi
rc=0
bin/wisp demo || rc=$?
cat <<MSG

wisp is running (state: $WISP_STATE). To use it from this shell:
  eval "\$(bin/wisp env --state $WISP_STATE)"
Stop it with: bin/wisp down --state $WISP_STATE
MSG
exit $rc
