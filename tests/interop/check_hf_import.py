#!/usr/bin/env python3
"""Interop: Hugging Face transformers loads the folder `quench import-llama2c`
wrote (assets/stories260K) and its logits equal the float64 reference of the
original llama2.c checkpoint (tests/data/stories260K_logits.json), and its
tokenizer (via AutoTokenizer) gives quench's ids.

Tolerance: transformers runs in float32 like quench; 1e-4 absolute on logits
of magnitude ~10 is what f32 summation order leaves (see tests/engine/test_forward.c).
"""
import json
import subprocess
import sys

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

LOGIT_TOL = 1e-4
model_dir = sys.argv[1] if len(sys.argv) > 1 else "assets/stories260K"
quench = sys.argv[2] if len(sys.argv) > 2 else "./quench"

ref = json.load(open("tests/data/stories260K_logits.json"))
model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
model.eval()
with torch.no_grad():
    logits = model(torch.tensor([ref["tokens"]])).logits[0].double()
worst = 0.0
for row, pos in enumerate(ref["positions"]):
    diff = (logits[pos] - torch.tensor(ref["logits"][row], dtype=torch.float64)).abs().max().item()
    worst = max(worst, diff)
print(f"transformers logits vs f64 reference: max |diff| {worst:.3g} (tolerance {LOGIT_TOL})")
ok = worst <= LOGIT_TOL

tok = AutoTokenizer.from_pretrained(model_dir)
texts = ["Once upon a time, there was a little girl named Lily.", "  two  spaces\tand tab\n\nand caf\u00e9 \U0001f999"]
for text in texts:
    theirs = tok(text)["input_ids"]
    out = subprocess.run([quench, "tokenize", model_dir, "--text", text, "--bos", "--json"],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out.strip().splitlines()[-1])["ids"]
    same = theirs == ours
    ok = ok and same
    print(f"tokenizer ids {'equal' if same else 'DIFFER'} for {text!r}" + ("" if same else f": {theirs} vs {ours}"))
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
