/* tokenizer_hf_save.c: qn_tokenizer -> tokenizer.json + tokenizer_config.json in
   the Hugging Face layout (huggingface/tokenizers serialization, transformers'
   PreTrainedTokenizerFast), built with jansson and written atomically.
   A tokenizer that merges by score (llama2.c tokenizer.bin, GGUF "llama") has no
   merge list; one is derived: every split of a normal piece into two vocabulary
   pieces, ordered by the piece's score (highest first, ties by id). HF's
   lowest-rank-first BPE over that list makes the same choices as the
   highest-score-first loop, as transformers' LlamaConverter relies on. */
#include "engine/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/tokenizer_impl.h"

typedef struct {
    float score;
    int32_t id, left, right;
    uint32_t split; /* bytes in the left part */
} derived_merge;

static int cmp_derived(const void *a, const void *b)
{
    const derived_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->split < y->split ? -1 : x->split > y->split;
}

static bool mergeable(const qn_tokenizer *t, int id)
{
    return id >= 0 && (t->type[id] == QN_TOKTYPE_NORMAL || t->type[id] == QN_TOKTYPE_USER_DEFINED);
}

/* The merges of a score-ordered tokenizer as (left, right) id pairs. */
static qn_status derive_merges(const qn_tokenizer *t, derived_merge **out, size_t *n_out, const char *what, qn_err *err)
{
    size_t n = 0, cap = 0;
    derived_merge *m = NULL;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!mergeable(t, (int)id)) continue;
        const unsigned char *p = (const unsigned char *)tok_piece_ptr(t, (int)id);
        size_t len = t->piece_len[id];
        for (size_t k = tok_utf8_char(p, len); k > 0 && k < len;) {
            int l = tok_lookup(t, (const char *)p, k), r = tok_lookup(t, (const char *)p + k, len - k);
            if (mergeable(t, l) && mergeable(t, r)) {
                if (n == cap) {
                    cap = cap ? 2 * cap : 1024;
                    derived_merge *g = realloc(m, cap * sizeof *m);
                    if (!g) { free(m); return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory deriving merges", what); }
                    m = g;
                }
                m[n++] = (derived_merge){ t->score[id], (int32_t)id, l, r, (uint32_t)k };
            }
            size_t cl = tok_utf8_char(p + k, len - k);
            k += cl ? cl : 1;
        }
    }
    qsort(m, n, sizeof *m, cmp_derived);
    *out = m;
    *n_out = n;
    return QN_OK;
}

/* ---- JSON pieces -------------------------------------------------------- */

static json_t *piece_json(const qn_tokenizer *t, int id)
{
    return json_stringn(tok_piece_ptr(t, id), t->piece_len[id]); /* NULL if not UTF-8 */
}

static json_t *special_ref(const qn_tokenizer *t, int id)
{
    return id >= 0 ? piece_json(t, id) : json_null();
}

static json_t *template_item(const qn_tokenizer *t, int id, const char *seq, int type_id)
{
    if (seq) return json_pack("{s:{s:s,s:i}}", "Sequence", "id", seq, "type_id", type_id);
    return json_pack("{s:{s:o,s:i}}", "SpecialToken", "id", piece_json(t, id), "type_id", type_id);
}

static json_t *post_processor(const qn_tokenizer *t)
{
    if (!t->add_bos && !t->add_eos) {
        if (t->kind == QN_TOK_BYTE_BPE)
            return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0,
                             "use_regex", 1);
        return json_null();
    }
    json_t *single = json_array(), *pair = json_array(), *specials = json_object();
    for (int part = 0; part < 2; part++) {
        if (t->add_bos) {
            json_array_append_new(pair, template_item(t, t->bos_id, NULL, part));
            if (!part) json_array_append_new(single, template_item(t, t->bos_id, NULL, 0));
        }
        json_array_append_new(pair, template_item(t, -1, part ? "B" : "A", part));
        if (!part) json_array_append_new(single, template_item(t, -1, "A", 0));
        if (t->add_eos) {
            json_array_append_new(pair, template_item(t, t->eos_id, NULL, part));
            if (!part) json_array_append_new(single, template_item(t, t->eos_id, NULL, 0));
        }
    }
    int ids[2] = { t->add_bos ? t->bos_id : -1, t->add_eos ? t->eos_id : -1 };
    for (int k = 0; k < 2; k++)
        if (ids[k] >= 0)
            json_object_set_new(specials, tok_piece_ptr(t, ids[k]),
                                json_pack("{s:o,s:[i],s:[o]}", "id", piece_json(t, ids[k]), "ids", ids[k],
                                          "tokens", piece_json(t, ids[k])));
    return json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing", "single", single, "pair", pair,
                     "special_tokens", specials);
}

static json_t *spm_normalizer(const qn_tokenizer *t)
{
    if (t->split_words || t->prefix_first_only) return json_null(); /* Metaspace does it */
    json_t *list = json_array();
    if (t->add_dummy_prefix) json_array_append_new(list, json_pack("{s:s,s:s}", "type", "Prepend", "prepend", TOK_META));
    json_array_append_new(list, json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", " ",
                                          "content", TOK_META));
    return json_pack("{s:s,s:o}", "type", "Sequence", "normalizers", list);
}

static json_t *pre_tokenizer(const qn_tokenizer *t)
{
    if (t->kind == QN_TOK_BYTE_BPE)
        return json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]}", "type", "Sequence", "pretokenizers",
                         "type", "Split", "pattern", "Regex", t->split_regex, "behavior", "Isolated", "invert", 0,
                         "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
    if (!t->split_words && !t->prefix_first_only) return json_null();
    const char *scheme = !t->add_dummy_prefix ? "never" : t->prefix_first_only ? "first" : "always";
    return json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace", "replacement", TOK_META, "prepend_scheme", scheme,
                     "split", t->split_words);
}

static json_t *decoder(const qn_tokenizer *t)
{
    if (t->kind == QN_TOK_BYTE_BPE)
        return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                         "use_regex", 1);
    json_t *list = json_pack("[{s:s,s:{s:s},s:s},{s:s},{s:s}]", "type", "Replace", "pattern", "String", TOK_META,
                             "content", " ", "type", "ByteFallback", "type", "Fuse");
    if (t->add_dummy_prefix)
        json_array_append_new(list, json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    return json_pack("{s:s,s:o}", "type", "Sequence", "decoders", list);
}

/* Hugging Face tokenizers ignores an added token's "id" when the model
   vocabulary lacks its content and numbers it after the vocabulary, so special
   tokens inside the id range (SmolLM2's <|im_start|> = 1) must be in the vocab;
   those past it (Llama 3's from 128000) may stay outside, as in Llama 3's file. */
static bool in_model_vocab(const qn_tokenizer *t, int id)
{
    if (t->piece_len[id] == 0 || t->type[id] == QN_TOKTYPE_UNUSED) return false;
    if (t->kind != QN_TOK_BYTE_BPE || !tok_is_special_type(t->type[id])) return true;
    for (size_t j = (size_t)id + 1; j < t->n_vocab; j++)
        if (!tok_is_special_type(t->type[j]) && t->type[j] != QN_TOKTYPE_UNUSED) return true;
    return false;
}

static qn_status build_model(const qn_tokenizer *t, json_t *model, const char *what, qn_err *err)
{
    json_t *vocab = json_object(), *merges = json_array();
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", merges);
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (!in_model_vocab(t, (int)id)) continue;
        json_t *key = piece_json(t, (int)id);
        if (!key) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: token %zu is not valid UTF-8", what, id);
        json_decref(key);
        if (tok_lookup(t, tok_piece_ptr(t, (int)id), t->piece_len[id]) != (int)id)
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: token %zu repeats the piece of token %d", what, id,
                              tok_lookup(t, tok_piece_ptr(t, (int)id), t->piece_len[id]));
        json_object_setn_new(vocab, tok_piece_ptr(t, (int)id), t->piece_len[id], json_integer((json_int_t)id));
    }
    derived_merge *dm = NULL;
    size_t n = t->n_merges;
    if (!t->ranked) {
        qn_status s = derive_merges(t, &dm, &n, what, err);
        if (s) return s;
    }
    bool spaces = false; /* "left right" strings only work without spaces in pieces */
    for (size_t i = 0; i < n && !spaces; i++) {
        int l = dm ? dm[i].left : t->merge_left[i], r = dm ? dm[i].right : t->merge_right[i];
        spaces = memchr(tok_piece_ptr(t, l), ' ', t->piece_len[l]) || memchr(tok_piece_ptr(t, r), ' ', t->piece_len[r]);
    }
    char *line = NULL;
    size_t cap = 0;
    qn_status s = QN_OK;
    for (size_t i = 0; i < n; i++) {
        int l = dm ? dm[i].left : t->merge_left[i], r = dm ? dm[i].right : t->merge_right[i];
        if (spaces) { json_array_append_new(merges, json_pack("[o,o]", piece_json(t, l), piece_json(t, r))); continue; }
        size_t len = t->piece_len[l] + 1 + t->piece_len[r];
        if (len > cap) {
            char *g = realloc(line, cap = 2 * len);
            if (!g) { s = qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", what); break; }
            line = g;
        }
        memcpy(line, tok_piece_ptr(t, l), t->piece_len[l]);
        line[t->piece_len[l]] = ' ';
        memcpy(line + t->piece_len[l] + 1, tok_piece_ptr(t, r), t->piece_len[r]);
        json_array_append_new(merges, json_stringn(line, len));
    }
    free(line);
    free(dm);
    return s;
}

static json_t *added_tokens(const qn_tokenizer *t)
{
    json_t *list = json_array();
    for (size_t id = 0; id < t->n_vocab; id++)
        if (tok_is_special_type(t->type[id]) && t->piece_len[id] > 0)
            json_array_append_new(list, json_pack("{s:i,s:o,s:b,s:b,s:b,s:b,s:b}", "id", (int)id,
                                                   "content", piece_json(t, (int)id), "single_word", 0, "lstrip", 0,
                                                   "rstrip", 0, "normalized", 0,
                                                   "special", t->type[id] != QN_TOKTYPE_USER_DEFINED));
    return list;
}

/* ---- writing ------------------------------------------------------------ */

static qn_status write_json(json_t *root, const char *dir, const char *name, qn_err *err)
{
    char path[4096];
    if (!qn_path_join(path, sizeof path, dir, name)) return qn_err_set(err, QN_ERR_ARG, "%s: path too long", dir);
    return qn_json_save(root, path, err);
}

qn_status qn_tok_save_hf(const qn_tokenizer *t, const char *dir, qn_err *err)
{
    qn_status s;
    json_t *root = NULL, *config = NULL, *model = NULL;
    if ((s = qn_dir_ensure(dir, err))) return s;
    bool spm = t->kind == QN_TOK_SPM;
    /* byte-level: no <unk> in the model, so a byte the vocabulary lacks is
       dropped (as llama.cpp and SmolLM2's own tokenizer.json do), not mapped to <unk> */
    model = json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b}", "type", "BPE", "dropout", "unk_token",
                      spm ? special_ref(t, t->unk_id) : json_null(), "continuing_subword_prefix", "end_of_word_suffix",
                      "fuse_unk", spm && (t->fuse_unk || !t->ranked), "byte_fallback",
                      spm && (t->byte_fallback || !t->ranked), "ignore_merges", t->ignore_merges);
    if (!model) { s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: tokenizer pieces are not valid UTF-8", dir); goto fail; }
    if ((s = build_model(t, model, dir, err))) goto fail;
    root = json_pack("{s:s,s:n,s:n,s:o,s:o,s:o,s:o,s:o,s:O}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added_tokens(t), "normalizer", spm ? spm_normalizer(t) : json_null(),
                     "pre_tokenizer", pre_tokenizer(t), "post_processor", post_processor(t),
                     "decoder", decoder(t), "model", model);
    config = json_pack("{s:b,s:b,s:o,s:o,s:o,s:b,s:s}", "add_bos_token", t->add_bos, "add_eos_token", t->add_eos,
                       "bos_token", special_ref(t, t->bos_id), "eos_token", special_ref(t, t->eos_id),
                       "unk_token", special_ref(t, t->unk_id), "clean_up_tokenization_spaces", 0,
                       "tokenizer_class", "PreTrainedTokenizerFast");
    if (!root || !config) {
        s = qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: could not build tokenizer.json (special tokens not valid UTF-8?)", dir);
        goto fail;
    }
    if ((s = write_json(root, dir, "tokenizer.json", err))) goto fail;
    s = write_json(config, dir, "tokenizer_config.json", err);
fail:
    json_decref(model);
    json_decref(root);
    json_decref(config);
    return s;
}

qn_status qn_tok_copy_hf_files(const char *src_dir, const char *dst_dir, qn_err *err)
{
    static const char *const files[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                         "tokenizer.model", "generation_config.json" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char from[4200], to[4200];
        if (!qn_path_join(from, sizeof from, src_dir, files[i]) || !qn_path_join(to, sizeof to, dst_dir, files[i]))
            return qn_err_set(err, QN_ERR_ARG, "path too long: %s/%s", src_dir, files[i]);
        qn_status s;
        if (qn_path_exists(from) && (s = qn_file_copy(from, to, err))) return s;
    }
    return QN_OK;
}
