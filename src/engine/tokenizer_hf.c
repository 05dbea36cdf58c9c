/* tokenizer_hf.c: Hugging Face tokenizer.json (huggingface/tokenizers'
   serialization) -> qn_tokenizer, read with jansson. Only the BPE model, in the
   two shapes Llama-family models use:
   - sentencepiece-style: normalizer Prepend("▁") + Replace(" " -> "▁") (or a
     Metaspace pre-tokenizer), byte_fallback, ranked merges (Llama 2, Mistral);
   - byte-level: ByteLevel pre-tokenizer, usually after a Split regex (Llama 3).
   Anything that would change the ids silently (another model type, NFKC,
   lowercasing, Digits splitting, ...) is refused with the file and the reason.
   BOS/EOS and add_bos come from tokenizer_config.json beside the file, else from
   the post_processor template, else from config.json. */
#include "engine/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fileio.h"
#include "engine/json_file.h"
#include "engine/tokenizer_impl.h"

/* GPT-2's split (openai/gpt-2 encoder.py), which ByteLevel applies when its
   use_regex is true; tokenizers' byte_level.rs carries the same constant. */
static const char k_gpt2_split[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    const char *path;
    bool byte_level, replace_space, dummy_prefix, first_only, split_words;
    const char *regex;     /* borrowed from the JSON or k_gpt2_split */
    char *regex_owned;     /* a Split "String" pattern, escaped */
} pipeline;

static const char *type_of(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "(no type)";
}

static bool is_str(json_t *v, const char *s) { return json_is_string(v) && strcmp(json_string_value(v), s) == 0; }

static qn_status set_regex(pipeline *p, const char *re, qn_err *err)
{
    if (p->regex) return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: more than one pre-tokenizer split", p->path);
    p->regex = re;
    return QN_OK;
}

/* A Split with a literal String pattern: escape ASCII punctuation for PCRE2. */
static qn_status literal_regex(pipeline *p, const char *lit, qn_err *err)
{
    size_t n = strlen(lit);
    if (!(p->regex_owned = malloc(2 * n + 1))) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory", p->path);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)lit[i];
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) p->regex_owned[w++] = '\\';
        p->regex_owned[w++] = (char)c;
    }
    p->regex_owned[w] = 0;
    return set_regex(p, p->regex_owned, err);
}

static qn_status read_normalizer(pipeline *p, json_t *n, qn_err *err)
{
    if (!n || json_is_null(n)) return QN_OK;
    const char *type = type_of(n);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(n, "normalizers");
        size_t i;
        json_t *item;
        if (!json_is_array(list)) return qn_err_set(err, QN_ERR_FORMAT, "%s: normalizer Sequence has no 'normalizers' list", p->path);
        json_array_foreach(list, i, item) {
            qn_status s = read_normalizer(p, item, err);
            if (s) return s;
        }
        return QN_OK;
    }
    if (strcmp(type, "Prepend") == 0 && is_str(json_object_get(n, "prepend"), TOK_META)) {
        p->dummy_prefix = true;
        return QN_OK;
    }
    if (strcmp(type, "Replace") == 0 && is_str(json_object_get(json_object_get(n, "pattern"), "String"), " ") &&
        is_str(json_object_get(n, "content"), TOK_META)) {
        p->replace_space = true;
        return QN_OK;
    }
    return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (only Prepend \"▁\" and "
                      "Replace \" \" -> \"▁\")", p->path, type);
}

static qn_status read_pretokenizer(pipeline *p, json_t *n, qn_err *err)
{
    if (!n || json_is_null(n)) return QN_OK;
    const char *type = type_of(n);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(n, "pretokenizers");
        size_t i;
        json_t *item;
        if (!json_is_array(list)) return qn_err_set(err, QN_ERR_FORMAT, "%s: pre_tokenizer Sequence has no 'pretokenizers' list", p->path);
        json_array_foreach(list, i, item) {
            qn_status s = read_pretokenizer(p, item, err);
            if (s) return s;
        }
        return QN_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_is_true(json_object_get(n, "add_prefix_space")))
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space is not supported", p->path);
        p->byte_level = true;
        json_t *use = json_object_get(n, "use_regex");
        return (!use || json_is_true(use)) ? set_regex(p, k_gpt2_split, err) : QN_OK;
    }
    if (strcmp(type, "Split") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        if (!is_str(json_object_get(n, "behavior"), "Isolated") || json_is_true(json_object_get(n, "invert")))
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: only Split with behavior Isolated, not inverted, is supported", p->path);
        if (re) return set_regex(p, re, err);
        if (lit) return literal_regex(p, lit, err);
        return qn_err_set(err, QN_ERR_FORMAT, "%s: Split pre-tokenizer has no Regex or String pattern", p->path);
    }
    if (strcmp(type, "Metaspace") == 0) {
        if (!is_str(json_object_get(n, "replacement"), TOK_META))
            return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: Metaspace replacement other than \"▁\" is not supported", p->path);
        json_t *scheme = json_object_get(n, "prepend_scheme"), *aps = json_object_get(n, "add_prefix_space");
        p->replace_space = true;
        if (scheme) {
            p->dummy_prefix = !is_str(scheme, "never");
            p->first_only = is_str(scheme, "first");
        } else {
            p->dummy_prefix = !aps || json_is_true(aps);
        }
        json_t *split = json_object_get(n, "split");
        p->split_words = !split || json_is_true(split);
        return QN_OK;
    }
    return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported", p->path, type);
}

/* ---- vocabulary --------------------------------------------------------- */

typedef struct {
    size_t n;
    const char **pieces;   /* (n) borrowed from the JSON */
    uint32_t *lens;        /* (n) */
    int32_t *types;        /* (n) */
} vocab;

static void vocab_free(vocab *v) { free(v->pieces); free(v->lens); free(v->types); }

static qn_status read_id(const char *path, const char *where, json_t *v, size_t *id, qn_err *err)
{
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
    if (x < 0 || x >= INT32_MAX - 1)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: %s: expected a token id, found %s", path, where,
                          json_is_integer(v) ? "an out-of-range number" : "no integer");
    *id = (size_t)x;
    return QN_OK;
}

static qn_status read_vocab(vocab *v, const char *path, json_t *model_vocab, json_t *added, bool byte_fallback, qn_err *err)
{
    const char *key;
    json_t *val, *item;
    size_t id, i, max_id = 0;
    qn_status s;
    if (!json_is_object(model_vocab) || json_object_size(model_vocab) == 0)
        return qn_err_set(err, QN_ERR_FORMAT, "%s: model.vocab is missing or empty", path);
    if (added && !json_is_array(added)) return qn_err_set(err, QN_ERR_FORMAT, "%s: added_tokens is not a list", path);
    json_object_foreach(model_vocab, key, val) {
        if ((s = read_id(path, key, val, &id, err))) return s;
        if (id > max_id) max_id = id;
    }
    json_array_foreach(added, i, item) {
        if ((s = read_id(path, "added_tokens", json_object_get(item, "id"), &id, err))) return s;
        if (!json_is_string(json_object_get(item, "content")))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: added token %zu has no content", path, id);
        if (id > max_id) max_id = id;
    }
    v->n = max_id + 1;
    v->pieces = calloc(v->n, sizeof *v->pieces);
    v->lens = calloc(v->n, sizeof *v->lens);
    v->types = malloc(v->n * sizeof *v->types);
    if (!v->pieces || !v->lens || !v->types) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu tokens", path, v->n);
    for (i = 0; i < v->n; i++) v->types[i] = QN_TOKTYPE_UNUSED;
    json_object_foreach(model_vocab, key, val) {
        read_id(path, key, val, &id, err);
        if (v->pieces[id])
            return qn_err_set(err, QN_ERR_FORMAT, "%s: model.vocab gives id %zu to both '%s' and '%s'", path, id, v->pieces[id], key);
        v->pieces[id] = key;
        v->lens[id] = (uint32_t)strlen(key);
        v->types[id] = QN_TOKTYPE_NORMAL;
        bool hex = v->lens[id] == 6 && memcmp(key, "<0x", 3) == 0 && key[5] == '>';
        if (byte_fallback && hex) v->types[id] = QN_TOKTYPE_BYTE;
    }
    json_array_foreach(added, i, item) {
        json_t *content = json_object_get(item, "content");
        read_id(path, "added_tokens", json_object_get(item, "id"), &id, err);
        v->pieces[id] = json_string_value(content);
        v->lens[id] = (uint32_t)json_string_length(content);
        v->types[id] = json_is_true(json_object_get(item, "special")) ? QN_TOKTYPE_CONTROL : QN_TOKTYPE_USER_DEFINED;
    }
    for (i = 0; i < v->n; i++)
        if (!v->pieces[i]) v->pieces[i] = ""; /* an id nothing names: unused */
    return QN_OK;
}

/* Merges are "left right" strings (tokenizers < 0.20) or [left, right] pairs. */
static qn_status read_merges(const char *path, json_t *merges, const char ***lines, tok_merge_text **pairs,
                             size_t *n, qn_err *err)
{
    *n = merges ? json_array_size(merges) : 0;
    if (merges && !json_is_array(merges)) return qn_err_set(err, QN_ERR_FORMAT, "%s: model.merges is not a list", path);
    if (!*n) return QN_OK;
    bool as_pairs = json_is_array(json_array_get(merges, 0));
    if (as_pairs) *pairs = malloc(*n * sizeof **pairs);
    else *lines = malloc(*n * sizeof **lines);
    if (as_pairs ? !*pairs : !*lines) return qn_err_set(err, QN_ERR_NOMEM, "%s: out of memory for %zu merges", path, *n);
    for (size_t i = 0; i < *n; i++) {
        json_t *m = json_array_get(merges, i);
        json_t *l = json_array_get(m, 0), *r = json_array_get(m, 1);
        if (!as_pairs && json_is_string(m)) { (*lines)[i] = json_string_value(m); continue; }
        if (!as_pairs || json_array_size(m) != 2 || !json_is_string(l) || !json_is_string(r))
            return qn_err_set(err, QN_ERR_FORMAT, "%s: merge %zu is neither \"left right\" nor [left, right] "
                              "like the first one", path, i);
        (*pairs)[i] = (tok_merge_text){ json_string_value(l), json_string_value(r), json_string_length(l), json_string_length(r) };
    }
    return QN_OK;
}

/* ---- BOS / EOS ---------------------------------------------------------- */

/* "<s>" or {"content": "<s>", ...} -> id, -1 when absent or unknown. */
static int token_ref(const qn_tokenizer *t, json_t *v)
{
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    return tok_lookup(t, json_string_value(v), json_string_length(v));
}

/* TemplateProcessing (possibly inside a Sequence): the special tokens that the
   single-sequence template puts first and last. */
static void template_ends(const qn_tokenizer *t, json_t *pp, int *first, int *last)
{
    if (is_str(json_object_get(pp, "type"), "Sequence")) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(pp, "processors"), i, item) template_ends(t, item, first, last);
        return;
    }
    if (!is_str(json_object_get(pp, "type"), "TemplateProcessing")) return;
    json_t *single = json_object_get(pp, "single");
    size_t n = json_array_size(single);
    if (!n) return;
    json_t *a = json_object_get(json_object_get(json_array_get(single, 0), "SpecialToken"), "id");
    json_t *b = json_object_get(json_object_get(json_array_get(single, n - 1), "SpecialToken"), "id");
    if (a) *first = token_ref(t, a);
    if (b) *last = token_ref(t, b);
}

static int config_id(json_t *v)
{
    if (json_is_array(v)) v = json_array_get(v, 0); /* Llama 3.1 lists several EOS ids */
    double x = json_number_value(v);
    return json_is_number(v) && x >= 0 && x < INT32_MAX ? (int)x : -1;
}

static qn_status load_json_beside(const char *path, const char *name, json_t **out, qn_err *err)
{
    char dir[4096], file[4096];
    *out = NULL;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] != '/') n--;
    if (n >= sizeof dir) return QN_OK;
    memcpy(dir, path, n);
    dir[n] = 0;
    if (!qn_path_join(file, sizeof file, n ? dir : ".", name) || !qn_path_exists(file)) return QN_OK;
    /* model_max_length is often 1e30, beyond jansson's integers */
    char *text = NULL;
    size_t len = 0;
    qn_status s = qn_file_read_all(file, &text, &len, err);
    if (s) return s;
    *out = qn_json_parse(text, len, JSON_DECODE_INT_AS_REAL, file, err);
    free(text);
    if (!*out) return QN_ERR_FORMAT;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        s = qn_err_set(err, QN_ERR_FORMAT, "%s: expected a JSON object at the top", file);
    }
    return s;
}

static qn_status read_specials(qn_tokenizer *t, const char *path, json_t *root, qn_err *err)
{
    json_t *tc = NULL, *cfg = NULL;
    qn_status s;
    if ((s = load_json_beside(path, "tokenizer_config.json", &tc, err))) return s;
    if ((s = load_json_beside(path, "config.json", &cfg, err))) { json_decref(tc); return s; }
    int tmpl_bos = -1, tmpl_eos = -1;
    template_ends(t, json_object_get(root, "post_processor"), &tmpl_bos, &tmpl_eos);
    int bos = token_ref(t, json_object_get(tc, "bos_token"));
    int eos = token_ref(t, json_object_get(tc, "eos_token"));
    if (bos < 0) bos = tmpl_bos;
    if (eos < 0) eos = tmpl_eos;
    if (bos < 0) bos = config_id(json_object_get(cfg, "bos_token_id"));
    if (eos < 0) eos = config_id(json_object_get(cfg, "eos_token_id"));
    if (bos >= (int)t->n_vocab) bos = -1;
    if (eos >= (int)t->n_vocab) eos = -1;
    json_t *ab = json_object_get(tc, "add_bos_token"), *ae = json_object_get(tc, "add_eos_token");
    t->bos_id = bos;
    t->eos_id = eos;
    t->add_bos = bos >= 0 && (json_is_boolean(ab) ? json_is_true(ab) : tmpl_bos >= 0);
    t->add_eos = eos >= 0 && (json_is_boolean(ae) ? json_is_true(ae) : tmpl_eos >= 0 && tmpl_eos != tmpl_bos);
    if (t->unk_id < 0) t->unk_id = token_ref(t, json_object_get(tc, "unk_token"));
    json_decref(tc);
    json_decref(cfg);
    return QN_OK;
}

/* ---- the loader --------------------------------------------------------- */

static qn_status read_model(pipeline *p, json_t *root, json_t **model, qn_err *err)
{
    *model = json_object_get(root, "model");
    if (!json_is_object(*model)) return qn_err_set(err, QN_ERR_FORMAT, "%s: no 'model' object", p->path);
    json_t *type = json_object_get(*model, "type");
    if (type && !is_str(type, "BPE"))
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", p->path,
                          json_is_string(type) ? json_string_value(type) : "?");
    const char *prefix = json_string_value(json_object_get(*model, "continuing_subword_prefix"));
    const char *suffix = json_string_value(json_object_get(*model, "end_of_word_suffix"));
    if ((prefix && *prefix) || (suffix && *suffix))
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: BPE with a subword prefix/suffix is not supported", p->path);
    qn_status s;
    if ((s = read_normalizer(p, json_object_get(root, "normalizer"), err))) return s;
    if ((s = read_pretokenizer(p, json_object_get(root, "pre_tokenizer"), err))) return s;
    if (p->byte_level && (p->replace_space || p->dummy_prefix))
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: byte-level BPE with a \"▁\" normalizer is not supported", p->path);
    if (!p->byte_level && !p->replace_space)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: BPE that is neither byte-level (ByteLevel pre-tokenizer) "
                          "nor sentencepiece-style (spaces as \"▁\") is not supported", p->path);
    if (!p->byte_level && p->regex)
        return qn_err_set(err, QN_ERR_UNSUPPORTED, "%s: a Split pre-tokenizer without ByteLevel is not supported", p->path);
    if (p->byte_level && !p->regex) p->regex = "(?s).+"; /* no split: each segment is one word */
    return QN_OK;
}

qn_status qn_tok_load_hf(qn_tokenizer **out, const char *path, qn_err *err)
{
    qn_status s;
    json_t *root = NULL, *model;
    pipeline p = { .path = path };
    vocab v = { 0 };
    const char **lines = NULL;
    tok_merge_text *pairs = NULL;
    size_t n_merges = 0;
    *out = NULL;
    if (!qn_path_exists(path)) return qn_err_set(err, QN_ERR_IO, "%s: no such file", path);
    char *text = NULL;
    size_t len = 0;
    if ((s = qn_file_read_all(path, &text, &len, err))) goto fail;
    root = qn_json_parse(text, len, 0, path, err);
    free(text);
    if (!root) { s = QN_ERR_FORMAT; goto fail; }
    if (!json_is_object(root)) { s = qn_err_set(err, QN_ERR_FORMAT, "%s: expected a JSON object at the top", path); goto fail; }
    if ((s = read_model(&p, root, &model, err))) goto fail;
    bool byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    if ((s = read_vocab(&v, path, json_object_get(model, "vocab"), json_object_get(root, "added_tokens"),
                        byte_fallback, err))) goto fail;
    if ((s = read_merges(path, json_object_get(model, "merges"), &lines, &pairs, &n_merges, err))) goto fail;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    int unk_id = -1;
    for (size_t i = 0; unk && i < v.n && unk_id < 0; i++)
        if (strcmp(v.pieces[i], unk) == 0) unk_id = (int)i;
    if (unk_id >= 0) v.types[unk_id] = QN_TOKTYPE_UNKNOWN;
    tok_build_spec b = {
        .s = { .kind = p.byte_level ? QN_TOK_BYTE_BPE : QN_TOK_SPM, .n_vocab = v.n, .pieces = v.pieces,
               .types = v.types, .n_merges = n_merges, .merges = lines, .bos_id = -1, .eos_id = -1,
               .unk_id = unk_id, .add_dummy_prefix = p.dummy_prefix, .split_regex = p.regex },
        .piece_lens = v.lens,
        .merge_pairs = pairs,
        .ranked = true,
        .byte_fallback = byte_fallback,
        .fuse_unk = json_is_true(json_object_get(model, "fuse_unk")),
        .ignore_merges = json_is_true(json_object_get(model, "ignore_merges")),
        .prefix_first_only = p.first_only,
        .split_words = p.split_words,
    };
    if ((s = tok_build(out, &b, path, err))) goto fail;
    if ((s = read_specials(*out, path, root, err))) { qn_tok_free(*out); *out = NULL; goto fail; }
fail:
    free(lines);
    free(pairs);
    free(p.regex_owned);
    vocab_free(&v);
    json_decref(root);
    return s;
}
