#!/usr/bin/env bash
# Runs every plan in configs/ against one target and prints a table: plan, exit status, verdict or refusal.
#   scripts/plans-against.sh etcd netns      # etcd, each node in its own network namespace (root)
#   scripts/plans-against.sh raft-node       # raft-node on loopback
# Needs a release build: cargo build --release -p chaos -p raft-node -p clock-shim (or CHAOS=path/to/chaos)
set -uo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: plans-against.sh TARGET [HOSTS]}
hosts=${2:-}
out=${OUT:-results/plans-against-$target}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%-28s %-5s %s\n' plan exit verdict
for plan in configs/*.toml; do
    args=(run "$plan" --target "$target" --quiet --out "$out")
    [ -n "$hosts" ] && args+=(--hosts "$hosts")
    "${CHAOS:-./target/release/chaos}" "${args[@]}" > "$log" 2>&1
    code=$?
    line=$(grep -E '^(PASS|FAIL|UNKNOWN|TOOL ERROR|chaos: error)' "$log" | head -1)
    printf '%-28s %-5s %s\n' "$(basename "$plan" .toml)" "$code" "${line:0:220}"
done
