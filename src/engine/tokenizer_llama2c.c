/* tokenizer_llama2c.c: llama2.c's tokenizer.bin, as written by karpathy/llama2.c
   tokenizer.py: int32 max_token_length, then per token f32 score, int32 byte
   length and the bytes; little-endian. The file does not store the vocabulary
   size (the model header does). The export wrote a plain space where sentencepiece
   has "▁" and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone here so the
   vocabulary reads like sentencepiece's and the one SPM encoder (merging by
   score, as llama2.c's encode does) serves it. */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/tokenizer_impl.h"

static int32_t rd_i32(const char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static float rd_f32(const char *p) { float v; memcpy(&v, p, 4); return v; }

/* The sentencepiece spelling of a stored piece, written to dst (3 * n bytes room). */
static size_t to_sentencepiece(const char *src, size_t n, char *dst)
{
    if (n == 5 && memcmp(src, "\n<s>\n", 5) == 0) { memcpy(dst, "<s>", 3); return 3; }
    if (n == 6 && memcmp(src, "\n</s>\n", 6) == 0) { memcpy(dst, "</s>", 4); return 4; }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == ' ') { memcpy(dst + m, TOK_META, TOK_META_LEN); m += TOK_META_LEN; }
        else dst[m++] = src[i];
    }
    return m;
}

static int32_t piece_type(const char *p, size_t n)
{
    if (n == 5 && memcmp(p, "<unk>", 5) == 0) return QN_TOKTYPE_UNKNOWN;
    if ((n == 3 && memcmp(p, "<s>", 3) == 0) || (n == 4 && memcmp(p, "</s>", 4) == 0)) return QN_TOKTYPE_CONTROL;
    if (n == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>') return QN_TOKTYPE_BYTE;
    return QN_TOKTYPE_NORMAL;
}

qn_status qn_tok_load_llama2c(qn_tokenizer **out, const char *path, int vocab_size, qn_err *err)
{
    qn_status s;
    char *data = NULL, *text = NULL;
    const char **pieces = NULL;
    uint32_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    size_t size = 0;
    *out = NULL;
    if (vocab_size <= 0)
        return qn_err_set(err, QN_ERR_ARG, "%s: vocabulary size %d must be positive", path, vocab_size);
    if ((s = qn_file_read_all(path, &data, &size, err))) return s;
    if (size < 4) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: truncated: %zu bytes, expected at least a 4-byte header", path, size);
        goto fail;
    }
    int32_t max_len = rd_i32(data);
    if (max_len <= 0) {
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: max_token_length is %d, expected a positive number", path, max_len);
        goto fail;
    }
    size_t n = (size_t)vocab_size;
    pieces = malloc(n * sizeof *pieces);
    lens = malloc(n * sizeof *lens);
    scores = malloc(n * sizeof *scores);
    types = malloc(n * sizeof *types);
    text = malloc(3 * size + 1); /* each byte becomes at most 3 ("▁") */
    if (!pieces || !lens || !scores || !types || !text) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu tokens", path, n);
        goto fail;
    }
    size_t off = 4, w = 0;
    int bos = -1, eos = -1, unk = -1;
    for (size_t i = 0; i < n; i++) {
        if (size - off < 8) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: truncated at token %zu of %zu (byte %zu of %zu)",
                           path, i, n, off, size);
            goto fail;
        }
        scores[i] = rd_f32(data + off);
        int32_t len = rd_i32(data + off + 4);
        off += 8;
        if (len < 0 || (size_t)len > size - off) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: truncated: token %zu of %zu has length %d but %zu bytes are left",
                           path, i, n, len, size - off);
            goto fail;
        }
        lens[i] = (uint32_t)to_sentencepiece(data + off, (size_t)len, text + w);
        pieces[i] = text + w;
        types[i] = piece_type(pieces[i], lens[i]);
        if (types[i] == QN_TOKTYPE_UNKNOWN && unk < 0) unk = (int)i;
        if (types[i] == QN_TOKTYPE_CONTROL && lens[i] == 3 && bos < 0) bos = (int)i;
        if (types[i] == QN_TOKTYPE_CONTROL && lens[i] == 4 && eos < 0) eos = (int)i;
        w += lens[i];
        off += (size_t)len;
    }
    tok_build_spec b = {
        .s = { .kind = QN_TOK_SPM, .n_vocab = n, .pieces = pieces, .scores = scores, .types = types,
               .bos_id = bos, .eos_id = eos, .unk_id = unk, .add_bos = true, .add_eos = false,
               .add_dummy_prefix = true },
        .piece_lens = lens,
        .byte_fallback = true,
    };
    s = tok_build(out, &b, path, err);
fail:
    free(data); free(text); free(pieces); free(lens); free(scores); free(types);
    return s;
}
