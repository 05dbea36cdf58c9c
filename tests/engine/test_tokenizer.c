/* test_tokenizer.c: the tokenizer against reference ids. shared/reference/
   tokenizer-cases.json holds 16 texts with the ids sentencepiece 0.1.97 gives for
   Llama 2's tokenizer.model (our input: llama2.c's tokenizer.bin) and the ids
   Hugging Face tokenizers (its JS port) gives for the Mistral and Llama 3
   tokenizer.json files; all must match exactly. Then: decode(encode(x)) == x on
   random bytes, save_hf -> load_hf keeps every id, and each broken input gives
   one qn_status and a message naming the file. */
#include "engine/tokenizer.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/fileio.h"

static char g_dir[256];

static void make_tmpdir(void)
{
    strcpy(g_dir, "/tmp/qn_tok_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp failed");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static json_t *g_cases; /* the reference cases, loaded once per test process */

static void remove_tmpdir(void)
{
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    json_decref(g_cases);
    g_cases = NULL;
}

TestSuite(tokenizer, .init = make_tmpdir, .fini = remove_tmpdir);

/* ---- helpers ------------------------------------------------------------ */

static const char *shared(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("QN_SHARED");
    cr_assert(qn_path_join(buf, cap, dir && *dir ? dir : "../shared", rel));
    return buf;
}

static const char *in_tmp(char *buf, size_t cap, const char *name)
{
    cr_assert(qn_path_join(buf, cap, g_dir, name));
    return buf;
}

static qn_tokenizer *load(const char *which)
{
    char path[4096];
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    qn_status s;
    if (strcmp(which, "llama2") == 0)
        s = qn_tok_load_llama2c(&t, shared(path, sizeof path, "models/llama2-tokenizer/tokenizer.bin"), 32000, &err);
    else if (strcmp(which, "tok512") == 0)
        s = qn_tok_load_llama2c(&t, shared(path, sizeof path, "models/stories260K/tok512.bin"), 512, &err);
    else if (strcmp(which, "mistral") == 0)
        s = qn_tok_load_hf(&t, shared(path, sizeof path, "tokenizers/mistral-32k/tokenizer.json"), &err);
    else
        s = qn_tok_load_hf(&t, shared(path, sizeof path, "tokenizers/llama3-128k/tokenizer.json"), &err);
    cr_assert_eq(s, QN_OK, "loading %s: %s", which, err.msg);
    return t;
}

static json_t *cases(void)
{
    if (g_cases) return g_cases;
    char path[4096];
    json_error_t je;
    g_cases = json_load_file(shared(path, sizeof path, "reference/tokenizer-cases.json"), 0, &je);
    cr_assert_not_null(g_cases, "%s: %s", path, je.text);
    return g_cases;
}

static size_t n_texts(void) { return json_array_size(json_object_get(cases(), "texts")); }

static const char *text_at(size_t i, size_t *len)
{
    json_t *v = json_array_get(json_object_get(cases(), "texts"), i);
    *len = json_string_length(v);
    return json_string_value(v);
}

static void encode(const qn_tokenizer *t, const char *text, size_t len, qn_tok_encode_opts o,
                   int32_t **ids, size_t *n)
{
    qn_err err = { 0 };
    qn_status s = qn_tok_encode(t, text, len, o, ids, n, &err);
    cr_assert_eq(s, QN_OK, "encode: %s", err.msg);
}

static void expect_ids(const char *what, size_t i, const int32_t *ids, size_t n, json_t *expect)
{
    size_t m = json_array_size(expect), k = 0;
    while (k < n && k < m && ids[k] == json_integer_value(json_array_get(expect, k))) k++;
    cr_assert(k == n && k == m, "%s case %zu: %zu ids, expected %zu; first difference at %zu: got %d, expected %d",
              what, i, n, m, k, k < n ? ids[k] : -1,
              k < m ? (int)json_integer_value(json_array_get(expect, k)) : -1);
}

static void check_reference(const char *which, const char *key, bool parse_special)
{
    qn_tokenizer *t = load(which);
    json_t *expect = json_object_get(cases(), key);
    cr_assert_eq(json_array_size(expect), n_texts(), "%s: one id list per text", key);
    for (size_t i = 0; i < n_texts(); i++) {
        size_t len, n;
        int32_t *ids;
        const char *text = text_at(i, &len);
        encode(t, text, len, (qn_tok_encode_opts){ .parse_special = parse_special }, &ids, &n);
        expect_ids(key, i, ids, n, json_array_get(expect, i));
        free(ids);
    }
    qn_tok_free(t);
}

static void assert_same_ids(const char *what, const qn_tokenizer *a, const qn_tokenizer *b,
                            const char *text, size_t len, bool parse_special)
{
    int32_t *x, *y;
    size_t nx, ny, k = 0;
    qn_tok_encode_opts o = { .parse_special = parse_special };
    encode(a, text, len, o, &x, &nx);
    encode(b, text, len, o, &y, &ny);
    while (k < nx && k < ny && x[k] == y[k]) k++;
    cr_assert(k == nx && k == ny, "%s: %zu vs %zu ids, first difference at %zu (%d vs %d)", what, nx, ny, k,
              k < nx ? x[k] : -1, k < ny ? y[k] : -1);
    free(x);
    free(y);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp, "%s: cannot create", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), fp), strlen(text));
    cr_assert_eq(fclose(fp), 0);
}

static char *read_shared(const char *rel, size_t *len)
{
    char path[4096], *buf;
    qn_err err = { 0 };
    cr_assert_eq(qn_file_read_all(shared(path, sizeof path, rel), &buf, len, &err), QN_OK, "%s", err.msg);
    return buf;
}

/* ---- reference ids ------------------------------------------------------ */

/* sentencepiece never matches "<s>" in text; llama2.c's tokenizer.bin must agree */
Test(tokenizer, llama2c_matches_sentencepiece)
{
    check_reference("llama2", "llama2-sentencepiece", false);
}

/* HF splits added tokens out even with add_special_tokens false: the reference
   has 1 and 2 for the literal "<s>" and "</s>", so parse_special is on */
Test(tokenizer, mistral_matches_hf)
{
    check_reference("mistral", "mistral-32k", true);
}

Test(tokenizer, llama3_matches_hf)
{
    check_reference("llama3", "llama3-128k", true);
}

/* "Hello world" with add_special_tokens: Mistral's config adds <s>; this
   Llama 3 file has a ByteLevel post-processor and no add_bos_token, so none. */
Test(tokenizer, hello_with_special_tokens)
{
    const char *which[2] = { "mistral", "llama3" };
    const char *key[2] = { "mistral-32k_hello_with_special", "llama3-128k_hello_with_special" };
    for (int k = 0; k < 2; k++) {
        qn_tokenizer *t = load(which[k]);
        int32_t *ids;
        size_t n;
        qn_tok_encode_opts o = { .add_bos = qn_tok_adds_bos(t), .parse_special = true };
        encode(t, "Hello world", 11, o, &ids, &n);
        expect_ids(key[k], 0, ids, n, json_object_get(cases(), key[k]));
        free(ids);
        qn_tok_free(t);
    }
}

Test(tokenizer, special_tokens_and_flags)
{
    qn_tokenizer *m = load("mistral"), *l3 = load("llama3"), *l2 = load("llama2");
    cr_assert_eq(qn_tok_kind_of(m), QN_TOK_SPM);
    cr_assert_eq(qn_tok_kind_of(l3), QN_TOK_BYTE_BPE);
    cr_assert_eq(qn_tok_kind_of(l2), QN_TOK_SPM);
    cr_assert_eq(qn_tok_vocab_size(m), 32000);
    cr_assert_eq(qn_tok_vocab_size(l3), 128256);
    cr_assert(qn_tok_bos(m) == 1 && qn_tok_eos(m) == 2 && qn_tok_adds_bos(m));
    cr_assert(qn_tok_bos(l3) == 128000 && qn_tok_eos(l3) == 128001 && !qn_tok_adds_bos(l3));
    cr_assert(qn_tok_bos(l2) == 1 && qn_tok_eos(l2) == 2 && qn_tok_adds_bos(l2));
    cr_assert_str_eq(qn_tok_piece(l2, 1), "<s>");
    cr_assert_str_eq(qn_tok_piece(l2, 259), "\xE2\x96\x81\xE2\x96\x81"); /* "  " in the file */
    cr_assert_eq(qn_tok_find(l2, "\xE2\x96\x81t"), 260);
    cr_assert_eq(qn_tok_type_of(l2, 13), QN_TOKTYPE_BYTE);
    cr_assert_eq(qn_tok_type_of(l2, 0), QN_TOKTYPE_UNKNOWN);
    cr_assert_eq(qn_tok_type_of(l3, 128009), QN_TOKTYPE_CONTROL);
    cr_assert_null(qn_tok_piece(l3, 128256));
    cr_assert_eq(qn_tok_find(m, "no such piece"), -1);
    /* parse_special off: "<s>" is text for every tokenizer */
    int32_t *ids;
    size_t n;
    encode(m, "<s> x </s>", 10, (qn_tok_encode_opts){ 0 }, &ids, &n);
    for (size_t i = 0; i < n; i++) cr_assert(ids[i] != 1 && ids[i] != 2, "id %d at %zu", ids[i], i);
    free(ids);
    encode(l3, "a<|eot_id|>b", 12, (qn_tok_encode_opts){ .parse_special = true, .add_bos = true, .add_eos = true },
           &ids, &n);
    cr_assert(n == 5 && ids[0] == 128000 && ids[2] == 128009 && ids[4] == 128001);
    free(ids);
    encode(l2, "", 0, (qn_tok_encode_opts){ .add_bos = true }, &ids, &n);
    cr_assert(n == 1 && ids[0] == 1, "empty text with BOS is just BOS");
    free(ids);
    qn_tok_free(m); qn_tok_free(l3); qn_tok_free(l2);
}

/* llama2.c's algorithm by hand on tok512: " Once upon a time" starts as one
   symbol per character; merging by score ends in the pieces "▁Once" (403),
   "▁upon" (407), "▁a" (261), "▁time" (378), each a whole word in this vocab. */
Test(tokenizer, tok512_once_upon_a_time)
{
    qn_tokenizer *t = load("tok512");
    int32_t *ids;
    size_t n;
    encode(t, "Once upon a time", 16, (qn_tok_encode_opts){ .add_bos = true }, &ids, &n);
    const int32_t want[5] = { 1, 403, 407, 261, 378 };
    cr_assert_eq(n, 5, "got %zu ids", n);
    for (int i = 0; i < 5; i++) cr_assert_eq(ids[i], want[i], "id %d: got %d, expected %d", i, ids[i], want[i]);
    cr_assert_str_eq(qn_tok_piece(t, 403), "\xE2\x96\x81Once");
    char *text;
    size_t len;
    qn_err err = { 0 };
    cr_assert_eq(qn_tok_decode(t, ids, n, &text, &len, &err), QN_OK);
    cr_assert_str_eq(text, "Once upon a time");
    free(text);
    free(ids);
    /* tok512 has no "日": "▁" (410), then byte fallback <0xE6> <0x97> <0xA5> = byte + 3 */
    encode(t, "\xE6\x97\xA5", 3, (qn_tok_encode_opts){ 0 }, &ids, &n);
    cr_assert(n == 4 && ids[0] == 410 && ids[1] == 0xE6 + 3 && ids[2] == 0x97 + 3 && ids[3] == 0xA5 + 3, "n=%zu", n);
    free(ids);
    qn_tok_free(t);
}

/* ---- decoding ----------------------------------------------------------- */

Test(tokenizer, decode_token_streams_pieces)
{
    qn_tokenizer *t = load("llama2");
    char buf[8];
    /* 8236 = "▁leading": the dummy-prefix space goes at the start and after BOS only */
    int id = qn_tok_find(t, "\xE2\x96\x81leading");
    cr_assert_eq(qn_tok_decode_token(t, -1, id, buf, sizeof buf), 7);
    cr_assert(memcmp(buf, "leading", 7) == 0);
    cr_assert_eq(qn_tok_decode_token(t, 1, id, buf, sizeof buf), 7);
    cr_assert_eq(qn_tok_decode_token(t, 100, id, buf, sizeof buf), 8);
    cr_assert(memcmp(buf, " leading", 8) == 0);
    cr_assert_eq(qn_tok_decode_token(t, 100, id, buf, 3), 8, "count beyond cap");
    cr_assert_eq(qn_tok_decode_token(t, 100, 1, buf, sizeof buf), 0, "BOS gives nothing");
    cr_assert_eq(qn_tok_decode_token(t, 100, 13, buf, sizeof buf), 1);
    cr_assert_eq(buf[0], '\n');
    qn_tok_free(t);
}

/* Every reference text survives encode -> decode; with parse_special the
   special tokens decode to nothing, so Mistral's "<s> literal tags </s>" comes
   back without them. */
Test(tokenizer, decode_inverts_reference_texts)
{
    const char *which[4] = { "llama2", "tok512", "mistral", "llama3" };
    for (int k = 0; k < 4; k++) {
        qn_tokenizer *t = load(which[k]);
        bool ps = k >= 2;
        for (size_t i = 0; i < n_texts(); i++) {
            size_t len, n, out_len;
            const char *text = text_at(i, &len);
            int32_t *ids;
            char *back;
            qn_err err = { 0 };
            encode(t, text, len, (qn_tok_encode_opts){ .add_bos = true, .parse_special = ps }, &ids, &n);
            cr_assert_eq(qn_tok_decode(t, ids, n, &back, &out_len, &err), QN_OK, "%s", err.msg);
            const char *want = text;
            if (ps && k == 2 && strcmp(text, "<s> literal tags </s>") == 0) want = " literal tags ";
            cr_assert(out_len == strlen(want) && memcmp(back, want, out_len) == 0,
                      "%s case %zu: decoded '%s', expected '%s'", which[k], i, back, want);
            free(back);
            free(ids);
        }
        qn_tok_free(t);
    }
}

/* Random bytes: ASCII, spaces, newlines, valid multi-byte characters and stray
   high bytes, so invalid UTF-8 is common. SPM cannot tell a literal "▁" from a
   space, so that one sequence is broken up for SPM tokenizers. */
static size_t random_text(char *buf, size_t cap, unsigned *seed, bool spm)
{
    static const char *const pieces[] = { " ", "  ", "\n", "\t", "a", "the", "Z", "7", "'s", ".", "\xC3\xA9",
                                          "\xE6\x97\xA5", "\xF0\x9F\xA6\x99", "\xE2\x96\x81", "<s>", "<0x41>" };
    size_t n = (size_t)(rand_r(seed) % (int)cap);
    size_t w = 0;
    while (w < n) {
        int r = rand_r(seed) % 3;
        if (r == 0) {
            buf[w++] = (char)(rand_r(seed) & 0xFF);
        } else {
            const char *p = pieces[rand_r(seed) % (int)(sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            if (w + l > n) break;
            memcpy(buf + w, p, l);
            w += l;
        }
    }
    if (spm)
        for (size_t i = 0; i + 2 < w; i++)
            if (memcmp(buf + i, "\xE2\x96\x81", 3) == 0) buf[i + 2] = 'x';
    return w;
}

Test(tokenizer, decode_inverts_random_bytes)
{
    const char *which[4] = { "llama2", "tok512", "mistral", "llama3" };
    char buf[400];
    for (int k = 0; k < 4; k++) {
        qn_tokenizer *t = load(which[k]);
        unsigned seed = 1234 + (unsigned)k;
        for (int trial = 0; trial < 300; trial++) {
            size_t len = random_text(buf, sizeof buf, &seed, qn_tok_kind_of(t) == QN_TOK_SPM), n, out_len;
            int32_t *ids;
            char *back;
            qn_err err = { 0 };
            encode(t, buf, len, (qn_tok_encode_opts){ .add_bos = trial & 1 }, &ids, &n);
            cr_assert_eq(qn_tok_decode(t, ids, n, &back, &out_len, &err), QN_OK, "%s", err.msg);
            size_t at = 0;
            while (at < len && at < out_len && back[at] == buf[at]) at++;
            cr_assert(out_len == len && at == len, "%s trial %d: %zu bytes back from %zu, first difference at %zu",
                      which[k], trial, out_len, len, at);
            free(back);
            free(ids);
        }
        qn_tok_free(t);
    }
}

Test(tokenizer, utf8_validation)
{
    size_t at = 99;
    cr_assert(qn_utf8_valid("", 0, &at));
    cr_assert(qn_utf8_valid("plain ascii", 11, NULL));
    const char *good = "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA6\x99 \xF4\x8F\xBF\xBF \xEE\x80\x80";
    cr_assert(qn_utf8_valid(good, strlen(good), &at), "valid text rejected at %zu", at);
    struct { const char *s; size_t len, bad; const char *why; } bad[] = {
        { "ab\x80", 3, 2, "stray continuation byte" },
        { "\xC0\xAF", 2, 0, "overlong 2-byte '/'" },
        { "x\xE0\x80\xAF", 4, 1, "overlong 3-byte" },
        { "\xF0\x8F\xBF\xBF", 4, 0, "overlong 4-byte" },
        { "ok\xED\xA0\x80", 5, 2, "surrogate U+D800" },
        { "\xED\xBF\xBF", 3, 0, "surrogate U+DFFF" },
        { "\xF4\x90\x80\x80", 4, 0, "above U+10FFFF" },
        { "abc\xE6\x97", 5, 3, "truncated at the end" },
        { "\xFF", 1, 0, "0xFF" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert(!qn_utf8_valid(bad[i].s, bad[i].len, &at), "%s accepted", bad[i].why);
        cr_assert_eq(at, bad[i].bad, "%s: offset %zu, expected %zu", bad[i].why, at, bad[i].bad);
    }
}

/* ---- qn_tok_create ------------------------------------------------------ */

/* tok512's arrays through the public spec give llama2.c's ids too. */
Test(tokenizer, create_from_spec_matches_loader)
{
    qn_tokenizer *t = load("tok512"), *c = NULL;
    size_t n = qn_tok_vocab_size(t);
    const char **pieces = malloc(n * sizeof *pieces);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    for (size_t i = 0; i < n; i++) {
        pieces[i] = qn_tok_piece(t, (int)i);
        scores[i] = qn_tok_score(t, (int)i);
        types[i] = qn_tok_type_of(t, (int)i);
    }
    qn_tok_spec spec = { .kind = QN_TOK_SPM, .n_vocab = n, .pieces = pieces, .scores = scores, .types = types,
                         .bos_id = 1, .eos_id = 2, .unk_id = 0, .add_bos = true, .add_dummy_prefix = true };
    qn_err err = { 0 };
    cr_assert_eq(qn_tok_create(&c, &spec, &err), QN_OK, "%s", err.msg);
    size_t len;
    char *text = read_shared("text/tinystories-valid-head.txt", &len);
    assert_same_ids("tok512 spec vs loader", t, c, text, len < 20000 ? len : 20000, false);
    free(text);
    free(pieces); free(scores); free(types);
    qn_tok_free(c);
    qn_tok_free(t);
}

/* A byte-level spec: the 256 GPT-2 byte characters plus three merges. */
Test(tokenizer, create_byte_level_spec)
{
    char chars[256][3];
    const char *pieces[259];
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)k++;
        if (cp < 0x80) { chars[b][0] = (char)cp; chars[b][1] = 0; }
        else { chars[b][0] = (char)(0xC0 | (cp >> 6)); chars[b][1] = (char)(0x80 | (cp & 0x3F)); chars[b][2] = 0; }
        pieces[b] = chars[b];
    }
    pieces[256] = "\xC4\xA0t"; /* "Ġt": space is U+0120 */
    pieces[257] = "he";
    pieces[258] = "\xC4\xA0the";
    const char *merges[3] = { "\xC4\xA0 t", "h e", "\xC4\xA0t he" };
    qn_tok_spec spec = { .kind = QN_TOK_BYTE_BPE, .n_vocab = 259, .pieces = pieces, .n_merges = 3, .merges = merges,
                         .bos_id = -1, .eos_id = -1, .unk_id = -1 };
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_tok_create(&t, &spec, &err), QN_OK, "%s", err.msg);
    int32_t *ids;
    size_t n;
    encode(t, "the the", 7, (qn_tok_encode_opts){ .add_bos = true }, &ids, &n);
    cr_assert(n == 3 && ids[0] == 't' && ids[1] == 257 && ids[2] == 258, "n=%zu", n);
    free(ids);
    const char *bad_merge[1] = { "x y" };
    spec.merges = bad_merge;
    spec.n_merges = 1;
    qn_tok_free(t);
    t = NULL;
    cr_assert_eq(qn_tok_create(&t, &spec, &err), QN_ERR_FORMAT);
    cr_assert(strstr(err.msg, "merge 0"), "%s", err.msg);
    cr_assert_null(t);
}

/* A hand-written sentencepiece-style tokenizer.json: merges as [left, right]
   pairs (tokenizers >= 0.20), no byte fallback, consecutive unknowns fused. */
Test(tokenizer, hf_pair_merges_and_fused_unk)
{
    char path[4096];
    write_text(in_tmp(path, sizeof path, "tokenizer.json"),
               "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}],"
               " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
               "{\"type\": \"Prepend\", \"prepend\": \"\u2581\"},"
               "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}]},"
               " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
               " \"vocab\": {\"<unk>\": 0, \"\u2581\": 1, \"a\": 2, \"b\": 3, \"\u2581a\": 4, \"ab\": 5,"
               " \"\u2581ab\": 6},"
               " \"merges\": [[\"a\", \"b\"], [\"\u2581\", \"a\"], [\"\u2581a\", \"b\"], [\"\u2581\", \"ab\"]]}}");
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    cr_assert_eq(qn_tok_load_hf(&t, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_tok_kind_of(t), QN_TOK_SPM);
    int32_t *ids;
    size_t n;
    /* "▁ab": rank 0 merges a+b first, then "▁"+"ab" (rank 3); "▁a"+"b" never gets its turn */
    encode(t, "ab ab", 5, (qn_tok_encode_opts){ 0 }, &ids, &n);
    cr_assert(n == 2 && ids[0] == 6 && ids[1] == 6, "n=%zu", n);
    free(ids);
    /* "c" and "d" are unknown: one fused <unk> */
    encode(t, "cd a", 4, (qn_tok_encode_opts){ 0 }, &ids, &n);
    cr_assert(n == 3 && ids[0] == 1 && ids[1] == 0 && ids[2] == 4, "n=%zu", n);
    free(ids);
    qn_tok_free(t);
}

/* ---- save_hf ------------------------------------------------------------ */

static void check_save_load(const char *which, bool parse_special)
{
    qn_tokenizer *t = load(which), *r = NULL;
    qn_err err = { 0 };
    char sub[512], path[600];
    snprintf(sub, sizeof sub, "%s/%s", g_dir, which);
    cr_assert_eq(qn_tok_save_hf(t, sub, &err), QN_OK, "%s", err.msg);
    cr_assert(qn_path_join(path, sizeof path, sub, "tokenizer.json"));
    cr_assert_eq(qn_tok_load_hf(&r, path, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_tok_vocab_size(r), qn_tok_vocab_size(t));
    cr_assert(qn_tok_bos(r) == qn_tok_bos(t) && qn_tok_eos(r) == qn_tok_eos(t));
    cr_assert_eq(qn_tok_adds_bos(r), qn_tok_adds_bos(t));
    for (size_t i = 0; i < n_texts(); i++) {
        size_t len;
        const char *text = text_at(i, &len);
        char what[64];
        snprintf(what, sizeof what, "%s case %zu", which, i);
        assert_same_ids(what, t, r, text, len, parse_special);
    }
    /* runs of 1..20 spaces: the whitespace pieces tie on score in Llama 2 */
    char spaces[512];
    size_t w = 0;
    for (int run = 1; run <= 20; run++) {
        memset(spaces + w, ' ', (size_t)run);
        w += (size_t)run;
        spaces[w++] = 'x';
    }
    assert_same_ids("space runs", t, r, spaces, w, parse_special);
    const char *texts[2] = { "text/tinystories-valid-head.txt", "text/wikitext2-raw-test.txt" };
    for (int k = 0; k < 2; k++) {
        size_t len;
        char *text = read_shared(texts[k], &len);
        assert_same_ids(texts[k], t, r, text, len < 20000 ? len : 20000, parse_special);
        free(text);
    }
    qn_tok_free(r);
    qn_tok_free(t);
}

/* merges derived from scores reproduce llama2.c's score-greedy ids under HF BPE */
Test(tokenizer, save_hf_tok512_round_trip) { check_save_load("tok512", false); }
Test(tokenizer, save_hf_llama2_round_trip) { check_save_load("llama2", false); }
Test(tokenizer, save_hf_mistral_round_trip) { check_save_load("mistral", true); }
Test(tokenizer, save_hf_llama3_round_trip, .timeout = 60) { check_save_load("llama3", true); }

Test(tokenizer, save_hf_writes_config)
{
    qn_tokenizer *t = load("tok512");
    qn_err err = { 0 };
    char path[4096];
    cr_assert_eq(qn_tok_save_hf(t, g_dir, &err), QN_OK, "%s", err.msg);
    json_error_t je;
    json_t *cfg = json_load_file(in_tmp(path, sizeof path, "tokenizer_config.json"), 0, &je);
    cr_assert_not_null(cfg, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(cfg, "bos_token")), "<s>");
    cr_assert_str_eq(json_string_value(json_object_get(cfg, "eos_token")), "</s>");
    cr_assert_str_eq(json_string_value(json_object_get(cfg, "unk_token")), "<unk>");
    cr_assert(json_is_true(json_object_get(cfg, "add_bos_token")));
    cr_assert(json_is_false(json_object_get(cfg, "add_eos_token")));
    json_decref(cfg);
    json_t *tj = json_load_file(in_tmp(path, sizeof path, "tokenizer.json"), 0, &je);
    cr_assert_not_null(tj, "%s", je.text);
    json_t *model = json_object_get(tj, "model");
    cr_assert(json_is_true(json_object_get(model, "byte_fallback")) && json_is_true(json_object_get(model, "fuse_unk")));
    cr_assert_eq(json_array_size(json_object_get(tj, "added_tokens")), 3);
    /* every piece of two or more characters needs at least one merge to be reachable */
    size_t n_merges = json_array_size(json_object_get(model, "merges")), n_multi = 0;
    for (int id = 259; id < 512; id++) {
        const char *p = qn_tok_piece(t, id);
        size_t chars = 0;
        for (; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
        n_multi += chars >= 2;
    }
    cr_assert_geq(n_merges, n_multi, "%zu merges for %zu multi-character pieces", n_merges, n_multi);
    json_decref(tj);
    qn_tok_free(t);
}

/* ---- broken input ------------------------------------------------------- */

static void expect_hf_error(const char *json, qn_status want, const char *word)
{
    char path[4096];
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    write_text(in_tmp(path, sizeof path, "tokenizer.json"), json);
    qn_status s = qn_tok_load_hf(&t, path, &err);
    cr_assert_eq(s, want, "got %s (%s), expected %s", qn_status_name(s), err.msg, qn_status_name(want));
    cr_assert(strstr(err.msg, path), "message '%s' does not name %s", err.msg, path);
    cr_assert(strstr(err.msg, word), "message '%s' does not say '%s'", err.msg, word);
    cr_assert_null(t);
}

Test(tokenizer, malformed_json_is_format_error)
{
    expect_hf_error("{\"model\": {\"type\": \"BPE\", ", QN_ERR_FORMAT, "malformed JSON");
    expect_hf_error("[1, 2]", QN_ERR_FORMAT, "JSON object");
    expect_hf_error("{\"version\": \"1.0\"}", QN_ERR_FORMAT, "model");
    expect_hf_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []},"
                    " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", QN_ERR_FORMAT, "token id");
}

Test(tokenizer, unknown_model_type_is_unsupported)
{
    expect_hf_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}", QN_ERR_UNSUPPORTED, "WordPiece");
    expect_hf_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", QN_ERR_UNSUPPORTED, "Unigram");
    expect_hf_error("{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0},"
                    " \"merges\": []}}", QN_ERR_UNSUPPORTED, "NFKC");
}

Test(tokenizer, missing_file_is_io_error)
{
    char path[4096];
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    in_tmp(path, sizeof path, "absent/tokenizer.json");
    cr_assert_eq(qn_tok_load_hf(&t, path, &err), QN_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    in_tmp(path, sizeof path, "absent.bin");
    cr_assert_eq(qn_tok_load_llama2c(&t, path, 512, &err), QN_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
    cr_assert_null(t);
}

Test(tokenizer, truncated_tokenizer_bin_is_format_error)
{
    size_t len;
    char *data = read_shared("models/stories260K/tok512.bin", &len);
    size_t cuts[3] = { 2, 3000, len - 1 };
    for (int k = 0; k < 3; k++) {
        char path[4096];
        qn_tokenizer *t = NULL;
        qn_err err = { 0 };
        FILE *fp = fopen(in_tmp(path, sizeof path, "tok.bin"), "wb");
        cr_assert_not_null(fp);
        cr_assert_eq(fwrite(data, 1, cuts[k], fp), cuts[k]);
        fclose(fp);
        cr_assert_eq(qn_tok_load_llama2c(&t, path, 512, &err), QN_ERR_FORMAT, "cut at %zu: %s", cuts[k], err.msg);
        cr_assert(strstr(err.msg, path) && strstr(err.msg, "truncated"), "%s", err.msg);
        cr_assert_null(t);
    }
    /* the model says 600 tokens, the file has 512 */
    char path[4096];
    qn_tokenizer *t = NULL;
    qn_err err = { 0 };
    shared(path, sizeof path, "models/stories260K/tok512.bin");
    cr_assert_eq(qn_tok_load_llama2c(&t, path, 600, &err), QN_ERR_FORMAT);
    cr_assert(strstr(err.msg, "token 512 of 600"), "%s", err.msg);
    free(data);
}
