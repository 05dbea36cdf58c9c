#!/bin/bash
# results.sh: the SmolLM2-135M compression results of docs/results.md (hours on
# 2 cores, so not part of `make bench`). Each preset is quantized with WikiText-2
# calibration (windows where llama.cpp's ctx-512 protocol scores nothing), timed
# with /usr/bin/time -v (wall seconds, peak RSS), then scored: perplexity on
# WikiText-2, ctx 512, llama.cpp protocol, first 40 chunks. Usage, from the
# repository root after `make`: bench/results.sh [OUT] [NAME...] (default
# build/results, every row); then bench/results_table.py OUT prints the table.
set -u
Q=${QN_BIN:-./quench}
S=${QN_SHARED:-../shared}
M=$S/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
WT=$S/text/wikitext2-raw-test.txt
R=${1:-build/results}
shift || true
mkdir -p "$R"
ppl() {   # NAME MODEL
    /usr/bin/time -v "$Q" ppl "$2" --text "$WT" --ctx 512 --protocol llamacpp --chunks 40 --json \
        > "$R/$1.ppl.json" 2> "$R/$1.ppl.err"
}
run() {   # NAME QUANTIZE-ARGS...
    local name=$1
    shift
    /usr/bin/time -v "$Q" quantize "$M" "$@" --calib "$WT" --out "$R/$name" --force > "$R/$name.qlog" 2> "$R/$name.qerr" &&
        ppl "$name" "$R/$name"
    echo "$(date -u +%T) $name rc=$?"
}
declare -A ARGS=(
    [spqr-3.6.wt]="--preset spqr-3.6"
    [spqr-4.6.wt]="--preset spqr-4.6-near-lossless"
    [gptq-4.wt]="--preset gptq-4"
    [rtn-4.wt]="--preset rtn-4"
    [gptq-3.wt]="--preset gptq-3"
    [rtn-3.wt]="--method rtn --wbits 3 --groupsize 128"
    [aqlm-2x8.wt]="--preset aqlm-2x8"
)
ORDER=(original spqr-3.6.wt spqr-4.6.wt gptq-4.wt rtn-4.wt gptq-3.wt rtn-3.wt aqlm-2x8.wt)
[ $# -gt 0 ] && ORDER=("$@")
for name in "${ORDER[@]}"; do
    if [ "$name" = original ]; then ppl original "$M"; echo "$(date -u +%T) original rc=$?"; continue; fi
    [ -n "${ARGS[$name]:-}" ] || { echo "results.sh: unknown row $name" >&2; exit 2; }
    # shellcheck disable=SC2086
    run "$name" ${ARGS[$name]}
done
