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
import os
import sys

# aqlm 1.1.7's CPU kernel (numba_gemm_lut) adds into output_vec[i] inside a
# prange over input groups: a data race whenever numba runs more than one
# thread, which scrambles its outputs (seen here: logits off by ~10). One thread
# gives the kernel's intended result. Must be set before numba is imported.
os.environ["NUMBA_NUM_THREADS"] = "1"

import torch
from quench_logits import logits_match
from transformers import AutoModelForCausalLM

LOGIT_TOL = 1e-3
folder = sys.argv[1]
quench = sys.argv[2] if len(sys.argv) > 2 else "./quench"

model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
model.eval()
ok = logits_match(model, folder, quench, LOGIT_TOL)
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
