#!/usr/bin/env python3
"""Interop: the Hugging Face SpQR folder quench writes (DIR/hf-spqr).

transformers' SpQR integration runs only on CUDA (spqr_quant's kernel), so
this check does what can be done without a GPU:
1. transformers' SpQRConfig accepts the quantization_config, and every linear
   has the four shapes its replace_with_spqr_linear asks for, equal to the
   tensors in model.safetensors, with the dtypes QuantizedLinear declares
   (dense_weights int64, row_offsets / col_vals / in_perm int32).
2. The tiles are decoded here independently, from the kernel's bit layout
   (spqr_quant inference_kernels: TileArray::push, SecondOrder, RowBits, the fp16
   dequantize2 arithmetic, additive CSR outliers over the permuted input), into
   a plain float32 LlamaForCausalLM, whose logits must equal `quench logits` of
   the same folder.

Tolerance: both sides round the same fp16 operations; summation order differs,
which moves logits of magnitude ~10 by ~1e-5. 1e-3 absolute still catches any
layout error (a wrong bit offset or permutation moves logits by whole units).
"""
import sys

import numpy as np
import torch
from quench_logits import logits_match
from safetensors.numpy import load_file
from transformers import AutoConfig, LlamaForCausalLM, SpQRConfig

LOGIT_TOL = 1e-3
folder = sys.argv[1]
quench = sys.argv[2] if len(sys.argv) > 2 else "./quench"

hf_config = AutoConfig.from_pretrained(folder)   # the folder's config.json, as from_pretrained reads it
qc = SpQRConfig.from_dict(hf_config.quantization_config)
assert (qc.bits, qc.beta1, qc.beta2) == (3, 16, 16), (qc.bits, qc.beta1, qc.beta2)
tensors = load_file(f"{folder}/model.safetensors")
dtypes = {"dense_weights": np.int64, "row_offsets": np.int32, "col_vals": np.int32, "in_perm": np.int32}


def decode(base, rows, cols):
    """Dense (rows, cols) float32 weight of one SpQR linear, as the CUDA kernel computes it."""
    for part, dt in dtypes.items():
        t = tensors[f"{base}.{part}"]
        assert t.dtype == dt and t.ndim == 1, (base, part, t.dtype, t.shape)
        assert qc.shapes[f"{base}.{part}.shape"] == t.shape[0], (base, part)
    words = tensors[f"{base}.dense_weights"].view(np.uint64)
    tiles_m, tiles_n = -(-rows // 16), -(-cols // 16)
    assert words.size == tiles_m * tiles_n * 16
    words = words.reshape(tiles_m, tiles_n, 16)                       # (tile row, tile col, row in tile)
    code = lambda shift: ((words >> np.uint64(shift)) & np.uint64(7)).astype(np.float16)
    # the 64-bit second-order word: byte q sits in bits 54..61 of row 2q of the tile
    so = np.zeros((tiles_m, tiles_n), dtype=np.uint64)
    for q in range(8):
        so |= ((words[:, :, 2 * q] >> np.uint64(54)) & np.uint64(0xFF)) << np.uint64(8 * q)
    half = lambda shift: ((so >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.uint16).view(np.float16)[:, :, None]
    scale_scale, zero_scale, scale_zero, zero_zero = half(0), half(16), half(32), half(48)
    s = scale_scale * (code(0) - scale_zero)                           # fp16 ops, as __hmul2 / __hsub2
    z = zero_scale * (code(3) - zero_zero)
    w = np.stack([s * (code(6 + 3 * l) - z) for l in range(16)], axis=-1)   # (tm, tn, 16 rows, 16 cols)
    dense = w.transpose(0, 2, 1, 3).reshape(tiles_m * 16, tiles_n * 16)[:rows, :cols].astype(np.float32)
    perm_pairs = tensors[f"{base}.in_perm"].view(np.uint32)
    perm = np.stack([perm_pairs & 0xFFFF, perm_pairs >> 16], axis=-1).reshape(-1).astype(np.int64)
    assert sorted(perm.tolist()) == list(range(cols)), f"{base}: in_perm is not a permutation"
    offsets = tensors[f"{base}.row_offsets"]
    cv = tensors[f"{base}.col_vals"].view(np.uint32)
    values = (cv >> 16).astype(np.uint16).view(np.float16).astype(np.float32)
    for r in range(rows):
        for k in range(offsets[r], offsets[r + 1]):
            dense[r, cv[k] & 0xFFFF] += values[k]                   # outliers are added, in sweep order
    out = np.empty_like(dense)
    out[:, perm] = dense                                             # sweep column j reads input perm[j]
    return out


del hf_config.quantization_config   # built unquantized here: the weights come from decode()
model = LlamaForCausalLM(hf_config).float().eval()
state = {}
n_quantized = 0
for name, p in model.state_dict().items():
    base = name[: -len(".weight")]
    if f"{base}.dense_weights" in tensors:
        state[name] = torch.from_numpy(decode(base, *p.shape))
        n_quantized += 1
    elif name in tensors:
        state[name] = torch.from_numpy(tensors[name].astype(np.float32))
    else:
        state[name] = p   # tied head, rotary buffers
missing = [k for k in qc.shapes if k.endswith(".dense_weights.shape") and
           k[: -len(".dense_weights.shape")] + ".weight" not in state]
assert not missing, missing
model.load_state_dict(state)
if model.config.tie_word_embeddings:
    model.tie_weights()

ok = n_quantized > 0
print(f"{n_quantized} SpQR linears decoded, SpQRConfig accepted")
ok = logits_match(model, folder, quench, LOGIT_TOL) and ok
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
