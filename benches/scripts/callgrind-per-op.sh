#!/usr/bin/env bash
# Instructions per operation of one subject of one scenario, counted by callgrind.
#
#   benches/scripts/callgrind-per-op.sh [scenario] [subject]
#   benches/scripts/callgrind-per-op.sh process.roundtrip ours        # the default
#   benches/scripts/callgrind-per-op.sh process.roundtrip pipe-floor
#   benches/scripts/callgrind-per-op.sh thread.roundtrip rayon-spawn
#
# Runs `compare --subject` twice under callgrind, with the --quick and the full repetition
# counts, and divides the difference of the instruction counts by the difference of the
# operation counts: start-up, pool set-up and tear-down cancel out, and every thread of the
# measuring process is counted (callgrind's --toggle-collect would only see the calling
# thread, not the pool's own threads). Worker processes run natively (no
# --trace-children), so this is the parent's side of the hot path; system calls are not
# instructions of the process and are not counted. Spin and yield loops are.
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=${1:-process.roundtrip}
subject=${2:-ours}
# COMPARE_EXE=path skips the build and uses that binary.
exe=${COMPARE_EXE:-}
if [ -z "$exe" ]; then
    cargo build --release -p benches --bin compare >&2
    exe=target/release/compare
fi
ops() { # total operations (warm-up + timed) of the scenario for a run mode
    "$exe" "$@" --only "$scenario" --exact --plan | awk -v s="$scenario" '$1 == s { print $2 + $3 }'
}
quick_ops=$(ops --quick)
full_ops=$(ops)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for mode in quick full; do
    flag=""; [ "$mode" = quick ] && flag=--quick
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/$mode" \
        "$exe" $flag --only "$scenario" --exact --subject "$subject" >"$out/log" 2>&1 || true
    grep -v '^==' "$out/log" >&2 || true
    if ! grep -q "^$scenario *$subject: " "$out/log"; then
        echo "the $mode run of $subject failed under valgrind (log above)" >&2
        exit 1
    fi
done
total() { cat "$out/$1"-* | awk '/^summary:/ { s += $2 } END { print s }'; }
per_thread() { for f in "$out/$1"-*; do awk '/^summary:/ { print $2 }' "$f"; done; }
q=$(total quick); f=$(total full)
echo "scenario $scenario, subject $subject: $quick_ops and $full_ops operations"
echo "instructions per operation (all threads of the parent): $(( (f - q) / (full_ops - quick_ops) ))"
paste <(per_thread quick) <(per_thread full) | awk -v d=$((full_ops - quick_ops)) \
    '{ printf "  thread %d: %d per operation\n", NR, ($2 - $1) / d }'
