/* tokenizer.h: text <-> token ids for Llama-family models.
   Two algorithms behind one type:
   - QN_TOK_SPM: sentencepiece-style BPE over pieces where "▁" (U+2581) stands
     for a space, with a dummy-prefix "▁" and byte fallback (<0xXX> tokens) for
     anything outside the vocabulary (Llama 2, Mistral, TinyLlama, llama2.c).
     Merges come either as an explicit ranked list (tokenizer.json) or from the
     piece scores (llama2.c tokenizer.bin, GGUF "llama" tokenizers): the pair whose
     merged piece scores highest merges first.
   - QN_TOK_BYTE_BPE: byte-level BPE (GPT-2 byte map) after the Llama-3 split
     regex, with ranked merges (Llama 3, SmolLM).
   Special/added tokens found literally in the text are matched first when the
   caller asks for it (parse_special).
   Loaders: Hugging Face tokenizer.json (+ tokenizer_config.json beside it),
   llama2.c tokenizer.bin, or a qn_tok_spec filled from GGUF metadata.
   Encoding never fails on odd bytes: invalid UTF-8 goes through byte fallback
   (SPM) or the byte map (byte-level), so decode(encode(x)) == x. */
#ifndef QN_TOKENIZER_H
#define QN_TOKENIZER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef enum { QN_TOK_SPM = 0, QN_TOK_BYTE_BPE } qn_tok_kind;

/* Token attributes, matching GGUF's tokenizer.ggml.token_type values. */
typedef enum {
    QN_TOKTYPE_NORMAL = 1, QN_TOKTYPE_UNKNOWN = 2, QN_TOKTYPE_CONTROL = 3,
    QN_TOKTYPE_USER_DEFINED = 4, QN_TOKTYPE_UNUSED = 5, QN_TOKTYPE_BYTE = 6
} qn_tok_type;

typedef struct qn_tokenizer qn_tokenizer; /* opaque: owns the vocabulary and lookup tables */

/* Everything needed to build a tokenizer from arrays (GGUF metadata, tests).
   Pieces are as stored by the source: SPM pieces use "▁" for spaces,
   byte-level pieces use the GPT-2 byte map. */
typedef struct {
    qn_tok_kind kind;
    size_t n_vocab;
    const char *const *pieces;     /* (n_vocab) NUL-terminated UTF-8 */
    const float *scores;           /* (n_vocab) or NULL; SPM merges by score when no merges given */
    const int32_t *types;          /* (n_vocab) qn_tok_type or NULL (all normal) */
    size_t n_merges;
    const char *const *merges;     /* (n_merges) "left right", rank = index; may be NULL for SPM */
    int bos_id, eos_id, unk_id;    /* -1 when absent */
    bool add_bos, add_eos;         /* what encode does by default */
    bool add_dummy_prefix;         /* SPM: prepend "▁" (true for Llama 2 / Mistral) */
    const char *split_regex;       /* byte-level pre-tokenizer pattern (PCRE2 syntax);
                                      NULL = Llama 3's */
} qn_tok_spec;

qn_status qn_tok_create(qn_tokenizer **out, const qn_tok_spec *spec, qn_err *err);
/* tokenizer.json; reads tokenizer_config.json (and config.json) from the same folder
   when present for bos/eos and add_bos. Unknown model types are an error naming the file. */
qn_status qn_tok_load_hf(qn_tokenizer **out, const char *tokenizer_json_path, qn_err *err);
/* llama2.c tokenizer.bin; vocab_size comes from the model header (the file does not store it). */
qn_status qn_tok_load_llama2c(qn_tokenizer **out, const char *path, int vocab_size, qn_err *err);
void      qn_tok_free(qn_tokenizer *t);

/* Writes tokenizer.json and tokenizer_config.json into dir (atomically), in the
   Hugging Face layout, so transformers loads the same tokenizer. SPM tokenizers
   built from scores get merges derived from the scores (ordered by merged-piece
   score, every split of a piece into two vocabulary pieces). */
qn_status qn_tok_save_hf(const qn_tokenizer *t, const char *dir, qn_err *err);
/* Copies the tokenizer files of a Hugging Face folder (tokenizer.json, tokenizer_config.json,
   special_tokens_map.json, tokenizer.model, generation_config.json: those present) to dst_dir. */
qn_status qn_tok_copy_hf_files(const char *src_dir, const char *dst_dir, qn_err *err);

qn_tok_kind qn_tok_kind_of(const qn_tokenizer *t);
size_t      qn_tok_vocab_size(const qn_tokenizer *t);
int         qn_tok_bos(const qn_tokenizer *t);   /* -1 when none */
int         qn_tok_eos(const qn_tokenizer *t);
bool        qn_tok_adds_bos(const qn_tokenizer *t);
/* The vocabulary string; NULL if out of range. SPM pieces spell spaces "▁" and
   BOS/EOS "<s>"/"</s>" also when loaded from llama2.c's tokenizer.bin. */
const char *qn_tok_piece(const qn_tokenizer *t, int id);
float       qn_tok_score(const qn_tokenizer *t, int id);
int         qn_tok_type_of(const qn_tokenizer *t, int id);
int         qn_tok_find(const qn_tokenizer *t, const char *piece); /* exact piece -> id, -1 if absent */

/* Hugging Face tokenizers split added tokens out of the text before anything
   else (parse_special = true reproduces them, with add_bos for their
   add_special_tokens); sentencepiece and llama2.c never do (parse_special = false).
   Non-special added tokens (type USER_DEFINED) are split out either way. */
typedef struct {
    bool add_bos;        /* prepend BOS (if the tokenizer has one) */
    bool add_eos;
    bool parse_special;  /* literal "<s>", "<|begin_of_text|>" etc. in the text become their ids */
} qn_tok_encode_opts;

/* Encodes len bytes of text (need not be NUL-terminated, may be invalid UTF-8).
   *ids is malloc'd; the caller frees it. */
qn_status qn_tok_encode(const qn_tokenizer *t, const char *text, size_t len,
                        qn_tok_encode_opts opts, int32_t **ids, size_t *n_ids, qn_err *err);

/* Bytes that token `id` contributes to the text when it follows token `prev`
   (-1 at the start): "▁" becomes a space, byte tokens become their byte, the
   dummy-prefix space after BOS / at the start is dropped, control tokens give
   nothing. Written to buf (not NUL-terminated); returns the byte count, which
   may exceed cap (then only cap bytes are written). Streaming generation calls
   this per token; multi-byte characters may span tokens. */
size_t qn_tok_decode_token(const qn_tokenizer *t, int prev, int id, char *buf, size_t cap);

/* Decodes a whole sequence into a malloc'd NUL-terminated string. */
qn_status qn_tok_decode(const qn_tokenizer *t, const int32_t *ids, size_t n,
                        char **text, size_t *len, qn_err *err);

/* True when buf[0..len) is valid UTF-8 (no overlongs, no surrogates). On false,
   *bad_offset (if not NULL) gets the offset of the first invalid byte. */
bool qn_utf8_valid(const char *buf, size_t len, size_t *bad_offset);

#endif
