#!/usr/bin/env python3
"""Writes tests/data/ggml_vectors.bin: random ggml blocks and their dequantized
values as computed by the `gguf` package (llama.cpp's gguf-py, whose numpy
dequantizers mirror ggml-quants.c), the oracle for tests/engine/test_gguf.c.

Each block is random bytes with its fp16 scale fields overwritten by finite
fp16 values (random sign, magnitudes 2^-14..2, the first block of each type
subnormal) so that every packed field takes arbitrary values while no scale is
inf or NaN. Fixed seed: rerunning gives the same file.

    pip install gguf numpy
    python3 tests/tools/make_ggml_vectors.py [out_path]

Layout (little-endian): "QNGV", u32 version = 1, u32 case count; per case:
u32 ggml type, u32 block count, u32 byte count, the block bytes, then
block count * block size float32 values.
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES, quants

# fp16 scale fields per type, as byte offsets inside one block (ggml-common.h)
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82],  # scales[16], qs[64], d, dmin
    T.Q3_K: [108],     # hmask[32], qs[64], scales[12], d
    T.Q4_K: [0, 2], T.Q5_K: [0, 2],
    T.Q6_K: [208],     # ql[128], qh[64], scales[16], d
}
BLOCKS = {T.F16: 64, T.BF16: 64, T.Q4_0: 8, T.Q4_1: 8, T.Q5_0: 8, T.Q5_1: 8, T.Q8_0: 8,
          T.Q2_K: 4, T.Q3_K: 4, T.Q4_K: 4, T.Q5_K: 4, T.Q6_K: 4}


def fp16_scales(rng, n, subnormal_first):
    mag = np.exp2(rng.uniform(-14, 1, n))
    if subnormal_first:
        mag[0] = 3e-6  # below fp16's smallest normal 6.1e-5
    sign = rng.choice([-1.0, 1.0], n)
    return (sign * mag).astype(np.float16)


def make_case(rng, qtype):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = BLOCKS[qtype]
    if qtype == T.F16:
        raw = (rng.standard_normal(n_blocks) * 0.1).astype(np.float16).view(np.uint8)
    elif qtype == T.BF16:
        f = (rng.standard_normal(n_blocks) * 0.1).astype(np.float32)
        raw = (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    else:
        raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
        for off in SCALE_OFFSETS[qtype]:
            raw[:, off:off + 2] = fp16_scales(rng, n_blocks, off == SCALE_OFFSETS[qtype][0]).view(np.uint8).reshape(n_blocks, 2)
        raw = raw.reshape(-1)
    values = quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
    assert values.size == n_blocks * block_size and np.isfinite(values).all()
    return struct.pack("<III", int(qtype), n_blocks, raw.size) + raw.tobytes() + values.astype("<f4").tobytes()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/ggml_vectors.bin"
    rng = np.random.default_rng(20240611)
    cases = [make_case(rng, q) for q in BLOCKS]
    with open(out, "wb") as fp:
        fp.write(b"QNGV" + struct.pack("<II", 1, len(cases)))
        for c in cases:
            fp.write(c)
    print(f"{out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
