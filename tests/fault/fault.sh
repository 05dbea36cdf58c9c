#!/usr/bin/env bash
# fault.sh: quench quantize under faults (issue 14).
#   usage: tests/fault/fault.sh QUENCH ROUNDS
# 1. kill: ROUNDS times, SIGKILL `quench quantize` at a random moment (and, every
#    other round, the resume too), then `--resume` until it finishes: the model,
#    stats and Hugging Face SpQR files must equal an uninterrupted run's, byte for byte.
# 2. disk full: a small tmpfs (needs root; skipped with a message otherwise): the
#    run fails with one message and exit 1, then, given room, resumes to the same bytes.
# 3. two writers: a second quantize into a running run's folder, and an export of
#    it, are refused; the first run finishes with the same bytes.
# Environment: QN_SHARED (../shared), FAULT_PRESET (spqr-3.6), FAULT_NSAMPLES (8),
# FAULT_SEQLEN (64), FAULT_SEED (random).
set -u
Q=$(realpath "${1:?usage: fault.sh QUENCH ROUNDS}")
ROUNDS=${2:-6}
SHARED=${QN_SHARED:-../shared}
CALIB=$(realpath "$SHARED/text/tinystories-valid-head.txt")
MODEL=$(realpath assets/stories260K)
PRESET=${FAULT_PRESET:-spqr-3.6}
SEED=${FAULT_SEED:-$RANDOM}
RANDOM=$SEED
WORK=$(mktemp -d /tmp/quench-fault-XXXXXX)
MNT=""
cleanup() {
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
failures=0
fail() { echo "fault: FAIL: $*"; failures=$((failures + 1)); }

# the run every phase makes, given --out DIR
QARGS=(quantize "$MODEL" --preset "$PRESET" --calib "$CALIB" --nsamples "${FAULT_NSAMPLES:-8}"
       --seqlen "${FAULT_SEQLEN:-64}")

same_as_reference() {   # same_as_reference DIR WHAT
    local f
    for f in model.safetensors stats.safetensors config.json hf-spqr/model.safetensors hf-spqr/config.json; do
        if [ -e "$WORK/ref/$f" ] && ! cmp -s "$WORK/ref/$f" "$1/$f"; then fail "$2: $f differs from the uninterrupted run"; return 1; fi
    done
    [ -d "$1/blocks" ] && { fail "$2: block checkpoints left behind"; return 1; }
    return 0
}

# runs a command in the background and SIGKILLs it after $1 seconds (unless it ended); prints "killed" or "ended"
run_and_kill() {
    local delay=$1; shift
    "$@" >"$WORK/out.log" 2>&1 &
    local pid=$!
    sleep "$delay"
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; echo killed
    else wait "$pid"; echo ended; fi
}

echo "fault: preset $PRESET, seed $SEED, work folder $WORK"
t0=$(date +%s.%N)
"$Q" "${QARGS[@]}" --out "$WORK/ref" >"$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; echo "fault: the reference run failed"; exit 1; }
ref_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "fault: uninterrupted run: ${ref_s} s"

# ---- 1. SIGKILL at random points, then resume ----
for ((i = 1; i <= ROUNDS; i++)); do
    out="$WORK/kill$i"
    at=$(awk -v t="$ref_s" -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.2f", t * r / 900 }')
    what=$(run_and_kill "$at" "$Q" "${QARGS[@]}" --out "$out")
    note=""
    if [ ! -f "$out/run.jsonl" ]; then   # killed before the run began: nothing to resume, start again
        note=", before the run began: started again"
        "$Q" "${QARGS[@]}" --out "$out" --force >"$WORK/rerun.log" 2>&1 ||
            { fail "round $i: rerun after an early kill failed: $(tail -1 "$WORK/rerun.log")"; continue; }
    else
        if ((i % 2 == 0)); then   # kill the resume too
            at2=$(awk -v t="$ref_s" -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.2f", t * r / 1500 }')
            note=", resume $(run_and_kill "$at2" "$Q" quantize --resume "$out") at ${at2} s"
        fi
        "$Q" quantize --resume "$out" >"$WORK/resume.log" 2>&1 || { fail "round $i: resume failed: $(tail -1 "$WORK/resume.log")"; continue; }
    fi
    blocks=$(grep -c '"event":"block"' "$out/run.jsonl")
    same_as_reference "$out" "round $i (kill at ${at}s, $what)" &&
        echo "fault: round $i: $what at ${at} s$note, resumed: identical ($blocks block events)"
    rm -rf "$out"
done

# ---- 2. disk full on a small tmpfs ----
MNT="$WORK/tmpfs"
mkdir -p "$MNT"
if mount -t tmpfs -o size=256k tmpfs "$MNT" 2>/dev/null; then
    "$Q" "${QARGS[@]}" --out "$MNT/run" >"$WORK/full.out" 2>"$WORK/full.err"
    rc=$?
    if [ $rc -ne 1 ]; then fail "disk full: exit $rc (want 1): $(cat "$WORK/full.err")"
    elif ! grep -q "No space left on device" "$WORK/full.err"; then fail "disk full: no clear message: $(cat "$WORK/full.err")"
    elif [ "$(grep -vc '^warning:' "$WORK/full.err")" -ne 1 ]; then fail "disk full: more than one message: $(cat "$WORK/full.err")"
    else
        echo "fault: disk full: exit 1, '$(tail -1 "$WORK/full.err")'"
        mount -o remount,size=16m "$MNT"
        if "$Q" quantize --resume "$MNT/run" >"$WORK/full2.log" 2>&1; then
            same_as_reference "$MNT/run" "disk full, then resumed" && echo "fault: disk full: resumed with room: identical"
        else fail "disk full: resume with room failed: $(tail -1 "$WORK/full2.log")"; fi
    fi
    umount "$MNT"; MNT=""
else
    echo "fault: disk full: skipped (mounting a tmpfs needs root)"
    MNT=""
fi

# ---- 3. two writers ----
out="$WORK/two"
"$Q" "${QARGS[@]}" --out "$out" >"$WORK/first.log" 2>&1 &
first=$!
for ((k = 0; k < 400; k++)); do [ -f "$out/run.jsonl" ] && break; sleep 0.01; done
# The first writer holds the lock from before run.jsonl exists; stopped, it
# stays running for the other two however fast the machine is.
kill -STOP "$first" 2>/dev/null
"$Q" "${QARGS[@]}" --out "$out" --force >"$WORK/second.out" 2>"$WORK/second.err"
rc=$?
"$Q" export-spqr-hf "$out" "$WORK/two-export" >/dev/null 2>"$WORK/export.err"
rc_export=$?
kill -CONT "$first" 2>/dev/null
if wait "$first"; then
    if [ $rc -ne 1 ] || ! grep -q "another quench process is writing" "$WORK/second.err"; then
        fail "two writers: the second got exit $rc: $(cat "$WORK/second.err")"
    elif [ $rc_export -eq 0 ]; then fail "two writers: an export of the running run was not refused"
    else
        same_as_reference "$out" "two writers" && echo "fault: two writers: second refused ('$(cat "$WORK/second.err")'), export refused, first run identical"
    fi
else
    fail "two writers: the first run failed: $(tail -1 "$WORK/first.log")"
fi

if ((failures)); then echo "fault: $failures failure(s)"; exit 1; fi
echo "fault: all passed"
