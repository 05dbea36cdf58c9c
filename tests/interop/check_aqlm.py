#!/usr/bin/env python3
"""Interop: transformers (with the `aqlm` package) loads an AQLM folder that
`quench quantize --method aqlm` wrote, and its logits on a few prompts equal
quench's own logits of the same folder.

Tolerance: both sides decode the same fp16 codebooks and scales exactly and
compute in float32; summation order differs (aqlm's numba/torch kernels vs
quench's), which moves logits of magnitude ~10 by ~1e-5. 1e-3 absolute leaves
room and still catches any layout error (a transposed code or a wrong codebook
moves logits by whole units).
"""
import json
import os
import subprocess
import sys

# aqlm 1.1.7's CPU kernel (numba_gemm_lut) adds into output_vec[i] inside a
# prange over input groups: a data race whenever numba runs more than one
# thread, which scrambles its outputs (seen here: logits off by ~10). One thread
# gives the kernel's intended result. Must be set before numba is imported.
os.environ["NUMBA_NUM_THREADS"] = "1"

import torch
from transformers import AutoModelForCausalLM

LOGIT_TOL = 1e-3
folder = sys.argv[1]
quench = sys.argv[2] if len(sys.argv) > 2 else "./quench"
prompts = ["Once upon a time", "Tom and his dog went to the park.", "The little bird"]

model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
model.eval()
ok = True
for prompt in prompts:
    out = subprocess.run([quench, "logits", folder, "--text", prompt, "--json"], check=True,
                         capture_output=True, text=True).stdout
    ours = json.loads(out.strip().splitlines()[-1])
    with torch.no_grad():
        theirs = model(torch.tensor([ours["ids"]])).logits[0].double()
    diff = (theirs - torch.tensor(ours["logits"], dtype=torch.float64)).abs().max().item()
    good = diff <= LOGIT_TOL
    ok = ok and good
    print(f"{prompt!r}: {len(ours['ids'])} tokens, max |logit diff| {diff:.3g} ({'ok' if good else 'FAIL'}, tol {LOGIT_TOL})")
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
