#!/usr/bin/env python3
"""Interop: `quench export-hf` of SmolLM2-135M (the Q4_1 GGUF) loads in
transformers with the GGUF's logits, and its tokenizer.json (AutoTokenizer)
gives llama.cpp's ids for the texts of reference/llamacpp-smollm2.json.

usage: check_smollm2_hf.py GGUF QUENCH OUTDIR   (OUTDIR-f32, -f16, -bf16 are written)

Tolerance: transformers and quench both compute in f32 on equal weights (the
f16/bf16 folders are upcast to f32 on load), so only summation order over 30
layers differs: 5e-4 on logits of ~20 (measured: under 1e-4).
Informational: a byte without a token between punctuation, where HF
tokenizers (drops the byte, then merges) and llama.cpp (blocks merges across
the byte, then drops it) differ; quench follows llama.cpp.
"""
import json
import os
import subprocess
import sys

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from quench_logits import logits_match

TOL = 5e-4
PROMPTS = ["The capital of France is", "Once upon a time", "def f(x):\n    return x**2"]

gguf, quench, out = sys.argv[1], sys.argv[2], sys.argv[3]
shared = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(gguf))))
ok = True
for dtype in ("f32", "f16", "bf16"):
    folder = f"{out}-{dtype}"
    subprocess.run([quench, "export-hf", gguf, folder, "--dtype", dtype], check=True)
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    print(f"{dtype} folder vs quench on the same folder:")
    ok = logits_match(model, folder, quench, TOL, PROMPTS) and ok
    if dtype == "f32":
        print("f32 folder in transformers vs quench on the GGUF:")
        ok = logits_match(model, gguf, quench, TOL, PROMPTS) and ok
        tok = AutoTokenizer.from_pretrained(folder)
        ref = json.load(open(os.path.join(shared, "reference/llamacpp-smollm2.json")))["tokenizer"]
        texts = json.load(open(os.path.join(shared, "reference/tokenizer-cases.json")))["texts"]
        cases = [(c["text"], c["ids"]) for c in ref["cases"]]
        cases += list(zip(texts, ref["tokenizer_cases_json_texts"]["ids"]))
        cases.append(("<|im_start|>user\nHi<|im_end|>\n", [1, 4093, 198, 26843, 2, 198]))
        same = 0
        for text, ids in cases:
            theirs = tok(text, add_special_tokens=True)["input_ids"]
            if theirs == ids:
                same += 1
            else:
                ok = False
                print(f"tokenizer ids DIFFER for {text[:50]!r}: {theirs[:20]} vs llama.cpp {ids[:20]}")
        print(f"AutoTokenizer ids equal llama.cpp's for {same} of {len(cases)} texts")
        # a byte without a token (0x04) between punctuation: llama.cpp keeps it as a
        # symbol (no merge across it) and drops it; HF drops it before merging
        for text in ["a\x04b", "!\x04!"]:
            theirs = tok(text)["input_ids"]
            q = subprocess.run([quench, "tokenize", gguf, "--text", text, "--json"], check=True,
                               capture_output=True, text=True).stdout
            ours = json.loads(q.strip().splitlines()[-1])["ids"]
            print(f"byte 0x04 in {text!r}: transformers {theirs}, quench (as llama.cpp) {ours}")
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
