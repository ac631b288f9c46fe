#!/usr/bin/env bash
# The main job: installs missing Debian packages (as root), builds wisp,
# starts it, and shows it working with the real gcloud. wisp stays up;
# `bin/wisp down` stops it. State lives in $WISP_STATE (default ./.state).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)"
export WISP_STATE=${WISP_STATE:-$PWD/.state}
bin/wisp up
eval "$(bin/wisp env)"
P=$CLOUDSDK_CORE_PROJECT
say() { printf '\n$ %s\n' "$*"; "$@"; }
say gcloud projects describe "$P"
NUM=$(gcloud projects describe "$P" --format='value(projectNumber)')
say gcloud projects add-iam-policy-binding "projects/$P" \
    --role=roles/container.clusterViewer \
    --member="principal://iam.googleapis.com/projects/$NUM/locations/global/workloadIdentityPools/$P.svc.id.goog/subject/ns/NAMESPACE/sa/KSA_NAME" \
    --condition=None
say gcloud projects get-iam-policy "$P"
cat <<MSG

wisp is running (state: $WISP_STATE). To use it from this shell:
  eval "\$(bin/wisp env --state $WISP_STATE)"
Stop it with: bin/wisp down --state $WISP_STATE
MSG
