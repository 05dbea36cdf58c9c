#!/usr/bin/env python3
"""results_table.py: the docs/results.md table from what bench/results.sh wrote.
Usage: bench/results_table.py [OUT] (default build/results)."""
import json, os, re, sys
R = sys.argv[1] if len(sys.argv) > 1 else 'build/results'
rows = [('original', 'original (Q4_1 dequantized, f32)'),
        ('rtn-4.wt', 'rtn-4'), ('gptq-4.wt', 'gptq-4'), ('spqr-4.6.wt', 'spqr-4.6-near-lossless'),
        ('spqr-3.6.wt', 'spqr-3.6'), ('rtn-3.wt', 'rtn-3 (--method rtn --wbits 3 --groupsize 128)'),
        ('gptq-3.wt', 'gptq-3'), ('aqlm-2x8.wt', 'aqlm-2x8')]
def timev(path):
    if not os.path.exists(path): return None, None
    t = open(path).read()
    w = re.search(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)', t)
    m = re.search(r'Maximum resident set size \(kbytes\): (\d+)', t)
    secs = None
    if w:
        parts = [float(x) for x in w.group(1).split(':')]
        secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return secs, int(m.group(1)) / 1024 if m else None
def ppl(name):
    p = f'{R}/{name}.ppl.json'
    if not os.path.exists(p): return None
    for line in reversed(open(p).read().splitlines()):
        if line.startswith('{'): return json.loads(line)
    return None
def bits(name):
    p = f'{R}/{name}/run.jsonl'
    if not os.path.exists(p): return None
    for line in open(p):
        e = json.loads(line)
        if e.get('event') == 'end': return e['bits']
    return None
base = ppl('original')
print('| preset | calibration | bits stored | ppl | Δ vs original | quantize wall s | quantize peak RSS MiB |')
print('|---|---|---|---|---|---|---|')
for name, label in rows:
    p = ppl(name)
    if p is None: continue
    qs, qr = timev(f'{R}/{name}.qerr')
    b = bits(name)
    cal = 'WikiText-2' if name.endswith('.wt') else '-'
    d = f"{100 * (p['ppl'] / base['ppl'] - 1):+.2f}%" if base and name != 'original' else '-'
    print(f"| {label} | {cal} | {b:.3f} |" if b else f"| {label} | {cal} | 32 (f32) |", end='')
    print(f" {p['ppl']:.4f} | {d} | {qs:.0f} | {qr:.0f} |" if qs else f" {p['ppl']:.4f} | {d} | - | - |")
