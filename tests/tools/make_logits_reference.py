#!/usr/bin/env python3
"""Reference logits for tests/engine/test_forward.c, computed in float64 with
numpy straight from the llama2.c checkpoint (Meta's interleaved RoPE, as
llama2.c run.c does it), independent of quench's loaders and forward pass.

usage: python3 tests/tools/make_logits_reference.py ../shared > tests/data/stories260K_logits.json
"""
import json
import struct
import sys

import numpy as np

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
path = f"{shared}/models/stories260K/stories260K.bin"
raw = open(path, "rb").read()
dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("7i", raw[:28])
vocab = abs(vocab)
hs = dim // n_heads
kv_dim = n_kv * hs
w = np.frombuffer(raw[28:], dtype=np.float32).astype(np.float64)
o = 0


def take(*shape):
    global o
    n = int(np.prod(shape))
    t = w[o:o + n].reshape(shape)
    o += n
    return t


emb = take(vocab, dim)
rms_att = take(n_layers, dim)
wq = take(n_layers, dim, dim)
wk = take(n_layers, kv_dim, dim)
wv = take(n_layers, kv_dim, dim)
wo = take(n_layers, dim, dim)
rms_ffn = take(n_layers, dim)
w1 = take(n_layers, hidden, dim)
w2 = take(n_layers, dim, hidden)
w3 = take(n_layers, hidden, dim)
rms_final = take(dim)


def rmsnorm(x, g, eps=1e-5):
    return g * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def rope_interleaved(x, pos):
    # pairs (2i, 2i+1) within each head rotate by pos * 10000^(-2i/hs)
    T = x.shape[0]
    x = x.reshape(T, -1, hs // 2, 2).copy()
    i = np.arange(hs // 2)
    freq = 1.0 / (10000.0 ** (2 * i / hs))
    ang = pos[:, None] * freq[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0].copy(), x[..., 1].copy()
    x[..., 0] = a * c - b * s
    x[..., 1] = a * s + b * c
    return x.reshape(T, -1)


def forward(tokens):
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    x = emb[tokens]
    group = n_heads // n_kv
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(n_layers):
        h = rmsnorm(x, rms_att[l])
        q = rope_interleaved(h @ wq[l].T, pos)
        k = rope_interleaved(h @ wk[l].T, pos)
        v = h @ wv[l].T
        out = np.zeros((T, dim))
        for hh in range(n_heads):
            kvh = hh // group
            qh = q[:, hh * hs:(hh + 1) * hs]
            kh = k[:, kvh * hs:(kvh + 1) * hs]
            vh = v[:, kvh * hs:(kvh + 1) * hs]
            s = qh @ kh.T / np.sqrt(hs) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, hh * hs:(hh + 1) * hs] = s @ vh
        x = x + out @ wo[l].T
        h = rmsnorm(x, rms_ffn[l])
        g = h @ w1[l].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w3[l].T)) @ w2[l].T
    return rmsnorm(x, rms_final) @ emb.T


tokens = [1] + [int((i * 97 + 31) % (vocab - 3)) + 3 for i in range(39)]
logits = forward(np.array(tokens))
check = [0, 1, 7, 20, 39]
print(json.dumps({
    "what": "float64 numpy reference logits of stories260K.bin (llama2.c layout, interleaved RoPE, "
            "shared classifier) for 'tokens'; one row per entry of 'positions'. "
            "Made by tests/tools/make_logits_reference.py.",
    "tokens": tokens,
    "positions": check,
    "logits": [[round(float(v), 7) for v in logits[p]] for p in check],
}))
