#!/usr/bin/env bash
# Fuzz the decoders of bytes that come from outside (fuzz/README.md lists the targets).
#
#   scripts/fuzz.sh ci                  build every target, run each ~10 s; exit 1 on any crash (CI)
#   scripts/fuzz.sh long [SECONDS] [TARGET...]
#                                       the longer run: SECONDS per target (default 600), optimised build
#   scripts/fuzz.sh run PROFILE SECONDS [TARGET...]
#                                       run already built targets (PROFILE: debug after ci, release after long)
#   scripts/fuzz.sh list                the targets
#
# Works on the stable toolchain: cargo-fuzz needs nightly only for sanitizers, and these targets are built with
# `--sanitizer none` (libFuzzer with SanitizerCoverage, plus debug assertions and overflow checks), which uses
# stable flags only. cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when missing.
#
# Corpora grow in fuzz/corpus/<target>/ (git-ignored; seeds come from fuzz/seeds/<target>/, the golden
# histories in checker/tests/golden and the plans in configs/). A crash leaves its input in
# fuzz/artifacts/<target>/ and the libFuzzer log in fuzz/logs/<target>.log; replay one with
#   <target dir>/x86_64-unknown-linux-gnu/<profile>/<target> fuzz/artifacts/<target>/crash-...
# Honours CARGO_TARGET_DIR (default: fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(history_jsonl history_edn plan_toml transport_frames transport_hello storage_wal storage_hard_state
    storage_roundtrip node_protocol netproxy_decide)

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

seeds_for() {
    case "$1" in
        history_jsonl | history_edn) echo checker/tests/golden ;;
        plan_toml) echo configs ;;
        *) [ -d "fuzz/seeds/$1" ] && echo "fuzz/seeds/$1" ;;
    esac
    return 0
}

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
        cargo install cargo-fuzz --locked
    fi
}

# build PROFILE_FLAG: --dev (fast to build, for CI) or -O (fast to run).
build() {
    local started=$SECONDS
    cargo fuzz build "$1" --debug-assertions --sanitizer none
    echo "fuzz: built ${#TARGETS[@]} targets in $((SECONDS - started)) s"
}

# run PROFILE_DIR SECONDS TARGET: runs one target; prints a summary line; returns libFuzzer's status.
run_one() {
    local profile=$1 seconds=$2 target=$3
    local binary="${CARGO_TARGET_DIR:-fuzz/target}/x86_64-unknown-linux-gnu/$profile/$target"
    local corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target" log="fuzz/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" fuzz/logs
    local seeds
    seeds=$(seeds_for "$target")
    local status=0
    # The corpus comes first: libFuzzer writes new inputs only into the first folder, never into the seeds.
    # shellcheck disable=SC2086 # $seeds is one folder or nothing
    "$binary" "$corpus" $seeds -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    local execs files bytes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    printf '%-20s %6s s %10s execs %6s corpus files %9s bytes  %s\n' "$target" "$seconds" "${execs:-?}" \
        "$files" "$bytes" "$([ "$status" = 0 ] && echo ok || echo "CRASH (exit $status): see $log")"
    return "$status"
}

run_all() {
    local profile=$1 seconds=$2
    shift 2
    local failed=()
    for target in "$@"; do
        run_one "$profile" "$seconds" "$target" || failed+=("$target")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz: crashes in: ${failed[*]}"
        for target in "${failed[@]}"; do
            echo "--- $target (fuzz/logs/$target.log) ---"
            grep -E -m 20 "panicked at|deadly signal|ERROR: libFuzzer|Test unit written|SUMMARY" \
                "fuzz/logs/$target.log" || tail -20 "fuzz/logs/$target.log"
        done
        return 1
    fi
    echo "fuzz: no crash in ${#@} targets"
}

mode=${1:-}
case "$mode" in
    ci)
        started=$SECONDS
        ensure_cargo_fuzz
        build --dev
        run_all debug "${FUZZ_CI_SECONDS:-10}" "${TARGETS[@]}"
        echo "fuzz: ci done in $((SECONDS - started)) s"
        ;;
    long)
        seconds=${2:-600}
        [[ "$seconds" =~ ^[0-9]+$ ]] || usage
        shift $(($# < 2 ? $# : 2))
        selected=("$@")
        [ ${#selected[@]} -gt 0 ] || selected=("${TARGETS[@]}")
        ensure_cargo_fuzz
        build -O
        run_all release "$seconds" "${selected[@]}"
        ;;
    run)
        [ $# -ge 3 ] && [[ "$3" =~ ^[0-9]+$ ]] || usage
        profile=$2 seconds=$3
        shift 3
        selected=("$@")
        [ ${#selected[@]} -gt 0 ] || selected=("${TARGETS[@]}")
        run_all "$profile" "$seconds" "${selected[@]}"
        ;;
    list) printf '%s\n' "${TARGETS[@]}" ;;
    *) usage ;;
esac
