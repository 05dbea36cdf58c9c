/* tokenizer.c: the vocabulary tables behind qn_tokenizer, the accessors, decoding
   and UTF-8 validation. Piece -> id and (left, right) -> merge rank are small
   open-addressing hash tables so that Llama 3's 128k pieces and 280k merges index
   in milliseconds. The byte-level map is GPT-2's bytes_to_unicode (openai/gpt-2
   src/encoder.py). Encoding lives in tokenizer_encode.c, the loaders in
   tokenizer_hf.c and tokenizer_llama2c.c. Nothing here normalizes Unicode (NFC/NFKC):
   Llama-family tokenizers do not ask for it. */
#include "engine/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"

/* Llama 3's pre-tokenizer split, for byte-level specs that carry no pattern (GGUF
   "llama-bpe"); tokenizer.json always brings its own. */
static const char k_llama3_split[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return mix64(h);
}

static uint64_t hash_pair(int32_t a, int32_t b)
{
    return mix64(((uint64_t)(uint32_t)a << 32) | (uint32_t)b);
}

/* Capacity at least twice the key count keeps linear probes short. */
static bool hash_init(tok_hash *h, size_t n_keys)
{
    size_t cap = 16;
    while (cap < 2 * n_keys + 1) cap <<= 1;
    h->slot = calloc(cap, sizeof *h->slot);
    h->mask = cap - 1;
    return h->slot != NULL;
}

const char *tok_piece_ptr(const qn_tokenizer *t, int id) { return t->pool + t->piece_off[id]; }

int tok_lookup(const qn_tokenizer *t, const char *s, size_t n)
{
    if (!t->pieces.slot) return -1;
    for (size_t i = hash_bytes(s, n) & t->pieces.mask;; i = (i + 1) & t->pieces.mask) {
        uint32_t v = t->pieces.slot[i];
        if (!v) return -1;
        int id = (int)v - 1;
        if (t->piece_len[id] == n && memcmp(tok_piece_ptr(t, id), s, n) == 0) return id;
    }
}

int tok_pair_rank(const qn_tokenizer *t, int32_t left, int32_t right)
{
    if (!t->pairs.slot) return -1;
    for (size_t i = hash_pair(left, right) & t->pairs.mask;; i = (i + 1) & t->pairs.mask) {
        uint32_t v = t->pairs.slot[i];
        if (!v) return -1;
        size_t r = v - 1;
        if (t->merge_left[r] == left && t->merge_right[r] == right) return (int)r;
    }
}

/* First id wins for a duplicated piece, as a sorted-vocabulary bsearch would mostly do. */
static void index_piece(qn_tokenizer *t, int id)
{
    const char *s = tok_piece_ptr(t, id);
    size_t n = t->piece_len[id];
    for (size_t i = hash_bytes(s, n) & t->pieces.mask;; i = (i + 1) & t->pieces.mask) {
        uint32_t v = t->pieces.slot[i];
        if (!v) { t->pieces.slot[i] = (uint32_t)id + 1; return; }
        int o = (int)v - 1;
        if (t->piece_len[o] == n && memcmp(tok_piece_ptr(t, o), s, n) == 0) return;
    }
}

/* ---- UTF-8 -------------------------------------------------------------- */

size_t tok_utf8_char(const unsigned char *s, size_t avail)
{
    if (avail == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) { n = 3; lo = 0xA0; }          /* no overlongs */
    else if (c == 0xED) { n = 3; hi = 0x9F; }          /* no surrogates */
    else if (c >= 0xE1 && c <= 0xEF) n = 3;
    else if (c == 0xF0) { n = 4; lo = 0x90; }          /* no overlongs */
    else if (c == 0xF4) { n = 4; hi = 0x8F; }          /* <= U+10FFFF */
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else return 0;
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

bool qn_utf8_valid(const char *buf, size_t len, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)buf;
    for (size_t i = 0; i < len;) {
        size_t n = tok_utf8_char(s + i, len - i);
        if (!n) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += n;
    }
    return true;
}

static size_t utf8_put(char *dst, unsigned cp)
{
    if (cp < 0x80) { dst[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    dst[0] = (char)(0xE0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other
   68 bytes to U+0100.. in byte order, so every byte is a visible character. */
static void init_byte_map(qn_tokenizer *t)
{
    for (int i = 0; i < 512; i++) t->char_byte[i] = -1;
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        t->byte_char[b] = (uint16_t)(printable ? b : next++);
        t->char_byte[t->byte_char[b]] = (int16_t)b;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xXX>" piece, -1 for any other piece. */
static int byte_piece_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* ---- building ----------------------------------------------------------- */

/* True when the piece has a "▁" right after something other than "▁" (never
   in Llama 2 or Mistral, where "▁" only starts pieces). */
static bool inner_meta(const char *p, size_t n)
{
    for (size_t j = 1; j + TOK_META_LEN <= n; j++)
        if (memcmp(p + j, TOK_META, TOK_META_LEN) == 0 &&
            !(j >= TOK_META_LEN && memcmp(p + j - TOK_META_LEN, TOK_META, TOK_META_LEN) == 0))
            return true;
    return false;
}

static qn_status copy_pieces(qn_tokenizer *t, const tok_build_spec *b, const char *what, qn_err *err)
{
    size_t n = t->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b->s.pieces[i]) return qn_err_set(err, QN_ERR_FORMAT, "%s: token %zu has no piece", what, i);
        size_t len = b->piece_lens ? b->piece_lens[i] : strlen(b->s.pieces[i]);
        if (len > UINT32_MAX / 4) return qn_err_set(err, QN_ERR_FORMAT, "%s: token %zu is %zu bytes long", what, i, len);
        t->piece_len[i] = (uint32_t)len;
        total += len + 1;
    }
    if (!(t->pool = malloc(total ? total : 1))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", what);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        t->piece_off[i] = off;
        memcpy(t->pool + off, b->s.pieces[i], t->piece_len[i]);
        off += t->piece_len[i];
        t->pool[off++] = 0;
    }
    return QN_OK;
}

/* Types as given; without them, BOS/EOS are control, <unk> unknown and, for
   SPM, "<0xXX>" pieces byte tokens (the llama2.c and sentencepiece layout). */
static void set_types(qn_tokenizer *t, const qn_tok_spec *s)
{
    for (size_t i = 0; i < t->n_vocab; i++) {
        t->score[i] = s->scores ? s->scores[i] : 0.0f;
        if (s->types) { t->type[i] = s->types[i]; continue; }
        t->type[i] = QN_TOKTYPE_NORMAL;
        if (s->kind == QN_TOK_SPM && byte_piece_value(tok_piece_ptr(t, (int)i), t->piece_len[i]) >= 0)
            t->type[i] = QN_TOKTYPE_BYTE;
    }
    if (!s->types) {
        if (t->bos_id >= 0) t->type[t->bos_id] = QN_TOKTYPE_CONTROL;
        if (t->eos_id >= 0) t->type[t->eos_id] = QN_TOKTYPE_CONTROL;
        if (t->unk_id >= 0) t->type[t->unk_id] = QN_TOKTYPE_UNKNOWN;
    }
    if (t->unk_id < 0)
        for (size_t i = 0; i < t->n_vocab && t->unk_id < 0; i++)
            if (t->type[i] == QN_TOKTYPE_UNKNOWN) t->unk_id = (int)i;
}

static qn_status index_bytes(qn_tokenizer *t, const char *what, qn_err *err)
{
    for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    if (t->kind == QN_TOK_SPM) {
        for (size_t i = 0; i < t->n_vocab; i++) {
            int v = byte_piece_value(tok_piece_ptr(t, (int)i), t->piece_len[i]);
            if (v >= 0 && t->type[i] == QN_TOKTYPE_BYTE && t->byte_token[v] < 0) t->byte_token[v] = (int32_t)i;
        }
        return QN_OK;
    }
    for (int b = 0; b < 256; b++) {
        char c[4];
        size_t n = utf8_put(c, t->byte_char[b]);
        t->byte_token[b] = tok_lookup(t, c, n); /* -1: the byte is dropped when encoding, as llama.cpp does */
    }
    (void)what; (void)err;
    return QN_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const qn_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    unsigned char fx = (unsigned char)tok_piece_ptr(t, x)[0], fy = (unsigned char)tok_piece_ptr(t, y)[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (t->piece_len[x] != t->piece_len[y]) return t->piece_len[x] > t->piece_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static qn_status index_specials(qn_tokenizer *t, const char *what, qn_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_vocab; i++) n += tok_is_special_type(t->type[i]) && t->piece_len[i] > 0;
    memset(t->special_start, 0, sizeof t->special_start);
    if (!n) return QN_OK;
    if (!(t->special = malloc(n * sizeof *t->special))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < t->n_vocab; i++)
        if (tok_is_special_type(t->type[i]) && t->piece_len[i] > 0) t->special[t->n_special++] = (int32_t)i;
    qsort_r(t->special, n, sizeof *t->special, cmp_special, t);
    /* special_start[b] = first entry whose first byte is >= b */
    size_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < n && (unsigned char)tok_piece_ptr(t, t->special[k])[0] < b) k++;
        t->special_start[b] = (uint32_t)k;
    }
    return QN_OK;
}

/* "left right": the split must leave two vocabulary pieces; the first space that
   does wins (HF requires exactly one space; GGUF lists follow it). */
static bool split_merge_line(const qn_tokenizer *t, const char *line, tok_merge_text *m)
{
    for (const char *sp = strchr(line, ' '); sp; sp = strchr(sp + 1, ' ')) {
        m->left = line; m->left_len = (size_t)(sp - line);
        m->right = sp + 1; m->right_len = strlen(sp + 1);
        if (tok_lookup(t, m->left, m->left_len) >= 0 && tok_lookup(t, m->right, m->right_len) >= 0) return true;
    }
    return false;
}

static qn_status index_merges(qn_tokenizer *t, const tok_build_spec *b, const char *what, qn_err *err)
{
    size_t n = b->s.n_merges;
    t->ranked = b->ranked || n > 0 || t->kind == QN_TOK_BYTE_BPE;
    if (!n) return QN_OK;
    size_t max_len = 0;
    for (size_t i = 0; i < t->n_vocab; i++) if (t->piece_len[i] > max_len) max_len = t->piece_len[i];
    char *cat = malloc(2 * max_len + 1);
    t->merge_left = malloc(n * sizeof *t->merge_left);
    t->merge_right = malloc(n * sizeof *t->merge_right);
    t->merge_result = malloc(n * sizeof *t->merge_result);
    if (!cat || !t->merge_left || !t->merge_right || !t->merge_result || !hash_init(&t->pairs, n)) {
        free(cat);
        return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu merges", what, n);
    }
    qn_status s = QN_OK;
    for (size_t r = 0; r < n; r++) {
        tok_merge_text m;
        if (b->merge_pairs) {
            m = b->merge_pairs[r];
        } else if (!b->s.merges || !b->s.merges[r] || !split_merge_line(t, b->s.merges[r], &m)) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: merge %zu ('%s') is not two vocabulary pieces separated by a space",
                           what, r, b->s.merges && b->s.merges[r] ? b->s.merges[r] : "(null)");
            goto fail;
        }
        int l = tok_lookup(t, m.left, m.left_len), rr = tok_lookup(t, m.right, m.right_len), res = -1;
        if (l >= 0 && rr >= 0 && m.left_len + m.right_len <= 2 * max_len) {
            memcpy(cat, m.left, m.left_len);
            memcpy(cat + m.left_len, m.right, m.right_len);
            res = tok_lookup(t, cat, m.left_len + m.right_len);
        }
        if (res < 0) {
            s = qn_err_set(err, QN_ERR_FORMAT, "%s: merge %zu ('%.*s' + '%.*s'): %s is not in the vocabulary", what, r,
                           (int)m.left_len, m.left, (int)m.right_len, m.right,
                           l < 0 ? "the left piece" : rr < 0 ? "the right piece" : "the merged piece");
            goto fail;
        }
        t->merge_left[r] = l; t->merge_right[r] = rr; t->merge_result[r] = res;
        t->fallback_merges |= t->type[l] == QN_TOKTYPE_BYTE || t->type[l] == QN_TOKTYPE_UNKNOWN ||
                              t->type[rr] == QN_TOKTYPE_BYTE || t->type[rr] == QN_TOKTYPE_UNKNOWN;
        /* a repeated merge takes its last rank, as HF's HashMap collect does */
        size_t i = hash_pair(l, rr) & t->pairs.mask;
        while (t->pairs.slot[i] && !(t->merge_left[t->pairs.slot[i] - 1] == l &&
                                     t->merge_right[t->pairs.slot[i] - 1] == rr))
            i = (i + 1) & t->pairs.mask;
        t->pairs.slot[i] = (uint32_t)r + 1;
    }
    t->n_merges = n;
fail:
    free(cat);
    return s;
}

qn_status tok_build(qn_tokenizer **out, const tok_build_spec *b, const char *what, qn_err *err)
{
    qn_status s;
    const qn_tok_spec *sp = &b->s;
    *out = NULL;
    if (sp->n_vocab == 0 || sp->n_vocab > INT32_MAX - 1 || !sp->pieces)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: vocabulary size %zu is out of range", what, sp->n_vocab);
    if (sp->kind != QN_TOK_SPM && sp->kind != QN_TOK_BYTE_BPE)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: unknown tokenizer kind %d", what, (int)sp->kind);
    int ids[3] = { sp->bos_id, sp->eos_id, sp->unk_id };
    for (int k = 0; k < 3; k++)
        if (ids[k] < -1 || ids[k] >= (int64_t)sp->n_vocab)
            return qn_err_set(err, QN_ERR_FORMAT, "%s: %s id %d is outside the vocabulary (%zu)", what,
                              k == 0 ? "BOS" : k == 1 ? "EOS" : "UNK", ids[k], sp->n_vocab);
    qn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", what);
    t->kind = sp->kind;
    t->n_vocab = sp->n_vocab;
    t->bos_id = sp->bos_id; t->eos_id = sp->eos_id; t->unk_id = sp->unk_id;
    t->add_bos = sp->add_bos && sp->bos_id >= 0;
    t->add_eos = sp->add_eos && sp->eos_id >= 0;
    t->add_dummy_prefix = sp->kind == QN_TOK_SPM && sp->add_dummy_prefix;
    t->prefix_first_only = b->prefix_first_only;
    t->split_words = b->split_words;
    t->byte_fallback = b->byte_fallback;
    t->fuse_unk = b->fuse_unk;
    t->ignore_merges = b->ignore_merges;
    t->piece_off = malloc(t->n_vocab * sizeof *t->piece_off);
    t->piece_len = malloc(t->n_vocab * sizeof *t->piece_len);
    t->score = malloc(t->n_vocab * sizeof *t->score);
    t->type = malloc(t->n_vocab * sizeof *t->type);
    if (!t->piece_off || !t->piece_len || !t->score || !t->type || !hash_init(&t->pieces, t->n_vocab)) {
        s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu tokens", what, t->n_vocab);
        goto fail;
    }
    if ((s = copy_pieces(t, b, what, err))) goto fail;
    set_types(t, sp);
    for (size_t i = 0; i < t->n_vocab; i++)
        if (t->piece_len[i] > 0 && t->type[i] != QN_TOKTYPE_UNUSED) index_piece(t, (int)i);
    t->meta_words = t->kind == QN_TOK_SPM;
    for (size_t i = 0; i < t->n_vocab && t->meta_words; i++)
        t->meta_words = !inner_meta(tok_piece_ptr(t, (int)i), t->piece_len[i]);
    init_byte_map(t);
    if ((s = index_bytes(t, what, err))) goto fail;
    if ((s = index_specials(t, what, err))) goto fail;
    if ((s = index_merges(t, b, what, err))) goto fail;
    if (t->kind == QN_TOK_BYTE_BPE) {
        const char *pat = sp->split_regex ? sp->split_regex : k_llama3_split;
        if (!(t->split_regex = strdup(pat))) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", what); goto fail; }
        if ((s = tok_compile_regex(t, pat, what, err))) goto fail;
    }
    *out = t;
    return QN_OK;
fail:
    qn_tok_free(t);
    return s;
}

qn_status qn_tok_create(qn_tokenizer **out, const qn_tok_spec *spec, qn_err *err)
{
    tok_build_spec b = { .s = *spec, .byte_fallback = spec->kind == QN_TOK_SPM };
    return tok_build(out, &b, "tokenizer spec", err);
}

void qn_tok_free(qn_tokenizer *t)
{
    if (!t) return;
    free(t->pool); free(t->piece_off); free(t->piece_len); free(t->score); free(t->type);
    free(t->merge_left); free(t->merge_right); free(t->merge_result);
    free(t->pieces.slot); free(t->pairs.slot);
    free(t->split_regex);
    pcre2_code_free(t->re);
    free(t->special);
    free(t);
}

/* ---- accessors ---------------------------------------------------------- */

qn_tok_kind qn_tok_kind_of(const qn_tokenizer *t) { return t->kind; }
size_t qn_tok_vocab_size(const qn_tokenizer *t) { return t->n_vocab; }
int qn_tok_bos(const qn_tokenizer *t) { return t->bos_id; }
int qn_tok_eos(const qn_tokenizer *t) { return t->eos_id; }
bool qn_tok_adds_bos(const qn_tokenizer *t) { return t->add_bos; }

static bool in_range(const qn_tokenizer *t, int id) { return id >= 0 && (size_t)id < t->n_vocab; }

const char *qn_tok_piece(const qn_tokenizer *t, int id) { return in_range(t, id) ? tok_piece_ptr(t, id) : NULL; }
float qn_tok_score(const qn_tokenizer *t, int id) { return in_range(t, id) ? t->score[id] : 0.0f; }
int qn_tok_type_of(const qn_tokenizer *t, int id) { return in_range(t, id) ? t->type[id] : -1; }
int qn_tok_find(const qn_tokenizer *t, const char *piece) { return tok_lookup(t, piece, strlen(piece)); }

/* ---- decoding ----------------------------------------------------------- */

static void put(char *buf, size_t cap, size_t *w, char c)
{
    if (*w < cap) buf[*w] = c;
    (*w)++;
}

/* Encoding puts a dummy "▁" before each text segment: at the start, and after
   each literally matched special token (or only at offset 0 for Metaspace
   "first"). Decoding drops exactly that one space. */
static bool after_segment_break(const qn_tokenizer *t, int prev)
{
    if (!in_range(t, prev)) return true;
    if (t->prefix_first_only) return prev == t->bos_id;
    return prev == t->bos_id || tok_is_special_type(t->type[prev]);
}

size_t qn_tok_decode_token(const qn_tokenizer *t, int prev, int id, char *buf, size_t cap)
{
    if (!t || !in_range(t, id)) return 0;
    int32_t type = t->type[id];
    if (type == QN_TOKTYPE_CONTROL || type == QN_TOKTYPE_UNKNOWN || type == QN_TOKTYPE_UNUSED) return 0;
    const char *p = tok_piece_ptr(t, id);
    size_t n = t->piece_len[id], w = 0;
    if (type == QN_TOKTYPE_BYTE) {
        int v = byte_piece_value(p, n);
        if (v >= 0) { put(buf, cap, &w, (char)v); return w; }
    }
    if (t->kind == QN_TOK_SPM) {
        bool strip = t->add_dummy_prefix && after_segment_break(t, prev);
        for (size_t i = 0; i < n;) {
            if (n - i >= TOK_META_LEN && memcmp(p + i, TOK_META, TOK_META_LEN) == 0) {
                if (!(strip && i == 0)) put(buf, cap, &w, ' ');
                i += TOK_META_LEN;
            } else {
                put(buf, cap, &w, p[i++]);
            }
        }
        return w;
    }
    if (type == QN_TOKTYPE_USER_DEFINED) { /* added tokens hold raw text, not mapped bytes */
        for (size_t i = 0; i < n; i++) put(buf, cap, &w, p[i]);
        return w;
    }
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t cl = tok_utf8_char(u + i, n - i);
        unsigned cp = 0;
        if (cl == 2) cp = ((u[i] & 0x1Fu) << 6) | (u[i + 1] & 0x3Fu);
        else if (cl == 1) cp = u[i];
        if (cl && cl <= 2 && cp < 512 && t->char_byte[cp] >= 0) {
            put(buf, cap, &w, (char)t->char_byte[cp]);
            i += cl;
        } else { /* not a mapped byte: copy the character through */
            size_t k = cl ? cl : 1;
            for (size_t j = 0; j < k; j++) put(buf, cap, &w, p[i + j]);
            i += k;
        }
    }
    return w;
}

qn_status qn_tok_decode(const qn_tokenizer *t, const int32_t *ids, size_t n,
                        char **text, size_t *len, qn_err *err)
{
    *text = NULL;
    if (len) *len = 0;
    size_t cap = 64, w = 0;
    char *out = malloc(cap);
    if (!out) return qn_err_set(err, QN_ERR_NOMEM, "tokenizer: out of memory decoding %zu tokens", n);
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        /* a token never decodes to more bytes than its piece has */
        size_t need = w + (in_range(t, id) ? t->piece_len[id] : 0) + 1;
        if (need > cap) {
            while (cap < need) cap *= 2;
            char *grown = realloc(out, cap);
            if (!grown) {
                free(out);
                return qn_err_set(err, QN_ERR_NOMEM, "tokenizer: out of memory decoding %zu tokens", n);
            }
            out = grown;
        }
        w += qn_tok_decode_token(t, i ? ids[i - 1] : -1, id, out + w, cap - w);
    }
    out[w] = 0;
    *text = out;
    if (len) *len = w;
    return QN_OK;
}
