/* tokenizer_encode.c: text -> ids. First literal special/added tokens are cut out
   of the text (Hugging Face tokenizers' AddedVocabulary), then each remaining
   segment is encoded:
   - SPM: spaces become "▁", a dummy "▁" goes in front, every character is a
     symbol (or its <0xXX> bytes when not in the vocabulary), and adjacent symbols
     merge until no pair is left, best pair first: lowest rank with a ranked merge
     list (HF BPE), highest merged-piece score without one (sentencepiece
     bpe_model.cc, llama2.c run.c). Ties go to the leftmost pair.
   - byte-level: the pre-tokenizer regex (PCRE2, from tokenizer.json) splits the
     segment, each piece maps byte-wise to GPT-2 characters and merges by rank.
   Merging uses a heap of candidate pairs over a linked list of symbols, as
   sentencepiece does, so a whole 1 MB text encodes in O(n log n). Stale heap
   entries are skipped when popped rather than removed. */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"

typedef struct {
    uint32_t start, len;  /* bytes in the segment buffer; len 0 = merged away */
    int32_t prev, next;   /* neighbours in the same word, -1 at the ends */
    int32_t id;
    bool frozen;          /* byte-fallback or <unk>: never merged by score */
} sym;

typedef struct {
    uint32_t key;         /* lower is better: rank, or the score turned around */
    uint32_t left, right; /* symbol indices */
    uint32_t right_len;   /* the right symbol's length when queued, to spot stale entries */
    int32_t id;           /* the merged token */
} cand;

typedef struct {
    const qn_tokenizer *t;
    int32_t *ids; size_t n_ids, cap_ids;
    sym *syms; size_t n_syms, cap_syms;
    cand *heap; size_t n_heap, cap_heap;
    char *buf; size_t cap_buf;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    qn_status status;     /* first failure; encoding stops there */
    qn_err *err;
} work;

static bool grow(work *w, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) {
        if (w->status == QN_OK)
            w->status = qn_err_set(w->err, QN_ERR_NOMEM, "tokenizer: out of memory (%zu x %zu bytes)", c, elem);
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

static void emit(work *w, int32_t id)
{
    if (!grow(w, (void **)&w->ids, &w->cap_ids, w->n_ids + 1, sizeof *w->ids)) return;
    w->ids[w->n_ids++] = id;
}

static void add_sym(work *w, uint32_t start, uint32_t len, int32_t id, bool frozen)
{
    if (!grow(w, (void **)&w->syms, &w->cap_syms, w->n_syms + 1, sizeof *w->syms)) return;
    w->syms[w->n_syms++] = (sym){ .start = start, .len = len, .prev = -1, .next = -1, .id = id, .frozen = frozen };
}

/* ---- the merge loop ----------------------------------------------------- */

static bool better(const cand *a, const cand *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static void heap_push(work *w, cand c)
{
    if (!grow(w, (void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap)) return;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!better(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static cand heap_pop(work *w)
{
    cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(&w->heap[c + 1], &w->heap[c])) c++;
        if (!better(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Maps a float so that unsigned comparison orders it like the float. */
static uint32_t float_order(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Queues the pair (l, r) if it merges into a token. */
static void try_pair(work *w, const char *text, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return;
    const qn_tokenizer *t = w->t;
    const sym *L = &w->syms[l], *R = &w->syms[r];
    uint32_t key;
    int32_t id;
    if (t->ranked) {
        if (L->id < 0 || R->id < 0) return; /* a byte with no token blocks merges across it */
        int rank = tok_pair_rank(t, L->id, R->id);
        if (rank < 0) return;
        key = (uint32_t)rank;
        id = t->merge_result[rank];
    } else {
        /* sentencepiece merges only into normal and user-defined pieces, never
           into <unk>, control or byte tokens, and never across byte fallback */
        if (L->frozen || R->frozen) return;
        id = tok_lookup(t, text + L->start, (size_t)L->len + R->len);
        if (id < 0 || (t->type[id] != QN_TOKTYPE_NORMAL && t->type[id] != QN_TOKTYPE_USER_DEFINED)) return;
        key = ~float_order(t->score[id]);
    }
    heap_push(w, (cand){ .key = key, .left = (uint32_t)l, .right = (uint32_t)r, .right_len = R->len, .id = id });
}

/* BPE over symbols [first, end), then their ids in order. */
static void bpe(work *w, const char *text, size_t first, size_t end)
{
    if (first >= end || w->status) return;
    sym *s = w->syms;
    for (size_t i = first; i < end; i++) {
        s[i].prev = i > first ? (int32_t)i - 1 : -1;
        s[i].next = i + 1 < end ? (int32_t)i + 1 : -1;
    }
    w->n_heap = 0;
    for (size_t i = first; i + 1 < end; i++) try_pair(w, text, (int32_t)i, (int32_t)i + 1);
    while (w->n_heap && !w->status) {
        cand c = heap_pop(w);
        sym *L = &s[c.left], *R = &s[c.right];
        if (L->len == 0 || L->next != (int32_t)c.right || R->len != c.right_len) continue;
        L->len += R->len;
        L->id = c.id;
        L->frozen = false;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) s[R->next].prev = (int32_t)c.left;
        try_pair(w, text, L->prev, (int32_t)c.left);
        try_pair(w, text, (int32_t)c.left, L->next);
    }
    for (int32_t i = (int32_t)first; i >= 0 && !w->status; i = s[i].next)
        if (s[i].id >= 0) emit(w, s[i].id);
}

/* ---- SPM ---------------------------------------------------------------- */

/* One symbol per character; characters outside the vocabulary become their
   <0xXX> byte tokens (all of them or none, as HF does), else <unk>. */
static void spm_symbols(work *w, const char *buf, size_t n)
{
    const qn_tokenizer *t = w->t;
    const unsigned char *u = (const unsigned char *)buf;
    bool last_unk = false;
    for (size_t i = 0; i < n && !w->status;) {
        size_t cl = tok_utf8_char(u + i, n - i), k = cl ? cl : 1;
        int id = cl ? tok_lookup(t, buf + i, cl) : -1;
        if (id >= 0) {
            add_sym(w, (uint32_t)i, (uint32_t)k, id, false);
            last_unk = false;
        } else {
            bool bytes = t->byte_fallback;
            for (size_t j = 0; j < k && bytes; j++) bytes = t->byte_token[u[i + j]] >= 0;
            if (bytes) {
                for (size_t j = 0; j < k; j++) add_sym(w, (uint32_t)(i + j), 1, t->byte_token[u[i + j]], true);
                last_unk = false;
            } else if (t->unk_id >= 0) {
                if (t->fuse_unk && last_unk) w->syms[w->n_syms - 1].len += (uint32_t)k;
                else add_sym(w, (uint32_t)i, (uint32_t)k, t->unk_id, true);
                last_unk = true;
            } /* no <unk> and no byte fallback: the character has no token and is dropped */
        }
        i += k;
    }
}

static void spm_segment(work *w, const char *text, size_t n, bool at_start)
{
    const qn_tokenizer *t = w->t;
    if (n == 0) return;
    if (n > (UINT32_MAX - TOK_META_LEN) / TOK_META_LEN) {
        w->status = qn_err_set(w->err, QN_ERR_ARG, "tokenizer: text segment of %zu bytes is too long", n);
        return;
    }
    if (!grow(w, (void **)&w->buf, &w->cap_buf, TOK_META_LEN * (n + 1), 1)) return;
    size_t m = 0;
    if (t->add_dummy_prefix && (at_start || !t->prefix_first_only)) {
        memcpy(w->buf, TOK_META, TOK_META_LEN);
        m = TOK_META_LEN;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') { memcpy(w->buf + m, TOK_META, TOK_META_LEN); m += TOK_META_LEN; }
        else w->buf[m++] = text[i];
    }
    w->n_syms = 0;
    spm_symbols(w, w->buf, m);
    /* BPE runs on independent stretches, which keeps the heap small and in
       cache, where no merge can cross: around a byte-fallback or <unk> symbol
       that no merge takes (every newline in Llama-family vocabularies), and
       before a "▁" that follows another character when no piece has such a "▁"
       inside (Metaspace split cuts before every "▁" by definition). */
    bool isolated = !t->ranked || !t->fallback_merges;
    size_t first = 0;
    bool prev_meta = false;
    for (size_t i = 0; i < w->n_syms; i++) {
        const sym *y = &w->syms[i];
        bool meta = y->len == TOK_META_LEN && memcmp(w->buf + y->start, TOK_META, TOK_META_LEN) == 0;
        if (y->frozen && isolated) {
            bpe(w, w->buf, first, i);
            emit(w, y->id);
            first = i + 1;
        } else if (meta && i > first && (t->split_words || (t->meta_words && !prev_meta))) {
            bpe(w, w->buf, first, i);
            first = i;
        }
        prev_meta = meta;
    }
    bpe(w, w->buf, first, w->n_syms);
}

/* ---- byte-level --------------------------------------------------------- */

static void bl_word(work *w, const unsigned char *s, size_t n)
{
    const qn_tokenizer *t = w->t;
    if (n == 0) return;
    if (n == 1) { if (t->byte_token[s[0]] >= 0) emit(w, t->byte_token[s[0]]); return; }
    if (t->ignore_merges) {
        if (!grow(w, (void **)&w->buf, &w->cap_buf, 2 * n, 1)) return;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned cp = t->byte_char[s[i]];
            if (cp < 0x80) w->buf[m++] = (char)cp;
            else { w->buf[m++] = (char)(0xC0 | (cp >> 6)); w->buf[m++] = (char)(0x80 | (cp & 0x3F)); }
        }
        int id = tok_lookup(t, w->buf, m);
        if (id >= 0 && !tok_is_special_type(t->type[id])) { emit(w, id); return; }
    }
    w->n_syms = 0;
    for (size_t i = 0; i < n; i++) add_sym(w, (uint32_t)i, 1, t->byte_token[s[i]], false);
    bpe(w, NULL, 0, w->n_syms);
}

qn_status tok_compile_regex(qn_tokenizer *t, const char *pattern, const char *what, qn_err *err)
{
    int code;
    PCRE2_SIZE at;
    /* MATCH_INVALID_UTF: invalid bytes match nothing and end up in the gaps
       between matches, which are encoded like matches, so no byte is lost */
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                          what, (size_t)at, (const char *)msg);
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* the interpreter still works without JIT */
    return QN_OK;
}

static void bl_segment(work *w, const char *text, size_t n)
{
    const qn_tokenizer *t = w->t;
    const unsigned char *u = (const unsigned char *)text;
    size_t off = 0;
    while (off < n && !w->status) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, n, off, 0, w->md, w->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            w->status = qn_err_set(w->err, QN_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer regex failed at byte %zu: %s",
                                   off, (const char *)msg);
            return;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t s = ov[0], e = ov[1];
        if (e == s) { /* an empty match takes one character so the scan moves on */
            size_t cl = tok_utf8_char(u + s, n - s);
            e = s + (cl ? cl : 1);
        }
        bl_word(w, u + off, s - off); /* the gap before the match */
        bl_word(w, u + s, e - s);
        off = e;
    }
    if (off < n) bl_word(w, u + off, n - off);
}

/* ---- the public entry --------------------------------------------------- */

static void encode_segment(work *w, const char *text, size_t n, bool at_start)
{
    if (w->t->kind == QN_TOK_SPM) spm_segment(w, text, n, at_start);
    else bl_segment(w, text, n);
}

/* The special token (longest first) that starts at text[0], or -1. */
static int match_special(const qn_tokenizer *t, const char *text, size_t avail, bool parse_special)
{
    unsigned char b = (unsigned char)text[0];
    for (uint32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != QN_TOKTYPE_USER_DEFINED) continue;
        size_t n = t->piece_len[id];
        if (n <= avail && memcmp(text, tok_piece_ptr(t, id), n) == 0) return id;
    }
    return -1;
}

static qn_status work_init(work *w, qn_err *err)
{
    if (w->t->kind != QN_TOK_BYTE_BPE) return QN_OK;
    w->md = pcre2_match_data_create_from_pattern(w->t->re, NULL);
    w->mctx = pcre2_match_context_create(NULL);
    w->jit = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!w->md || !w->mctx || !w->jit) return qn_err_set(err, QN_ERR_NOMEM, "tokenizer: out of memory for regex matching");
    pcre2_jit_stack_assign(w->mctx, NULL, w->jit);
    return QN_OK;
}

static void work_done(work *w)
{
    free(w->syms);
    free(w->heap);
    free(w->buf);
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mctx);
    pcre2_jit_stack_free(w->jit);
}

qn_status qn_tok_encode(const qn_tokenizer *t, const char *text, size_t len,
                        qn_tok_encode_opts opts, int32_t **ids, size_t *n_ids, qn_err *err)
{
    *ids = NULL;
    *n_ids = 0;
    work w = { .t = t, .err = err };
    qn_status s = work_init(&w, err);
    if (s) goto fail;
    if (!grow(&w, (void **)&w.ids, &w.cap_ids, len / 2 + 4, sizeof *w.ids)) goto fail;
    if (opts.add_bos && t->bos_id >= 0) emit(&w, t->bos_id);
    size_t seg = 0;
    for (size_t pos = 0; pos < len && !w.status;) {
        unsigned char b = (unsigned char)text[pos];
        int id = t->special_start[b] == t->special_start[b + 1] ? -1
                 : match_special(t, text + pos, len - pos, opts.parse_special);
        if (id < 0) { pos++; continue; }
        encode_segment(&w, text + seg, pos - seg, seg == 0);
        emit(&w, id);
        pos += t->piece_len[id];
        seg = pos;
    }
    encode_segment(&w, text + seg, len - seg, seg == 0);
    if (opts.add_eos && t->eos_id >= 0) emit(&w, t->eos_id);
    if ((s = w.status)) goto fail;
    work_done(&w);
    *ids = w.ids;
    *n_ids = w.n_ids;
    return QN_OK;
fail:
    if (!s) s = w.status;
    work_done(&w);
    free(w.ids);
    return s;
}
