/* tokenizer_impl.h: the tokenizer's private state, shared by tokenizer.c (tables,
   decode), tokenizer_encode.c (BPE), tokenizer_hf.c / tokenizer_hf_save.c
   (tokenizer.json) and tokenizer_llama2c.c (tokenizer.bin). Loaders describe a
   vocabulary with a tok_build_spec and call tok_build; nothing outside
   src/engine/tokenizer*.c includes this file. */
#ifndef QN_TOKENIZER_IMPL_H
#define QN_TOKENIZER_IMPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/tokenizer.h"
#include "status.h"

#define TOK_META "\xE2\x96\x81" /* "▁" U+2581, sentencepiece's visible space */
#define TOK_META_LEN 3

/* Open addressing, linear probing; a slot holds index + 1, 0 = empty. The keys
   live elsewhere (piece bytes, merge pairs), so a slot is 4 bytes. */
typedef struct {
    uint32_t *slot; /* (mask + 1) */
    size_t mask;
} tok_hash;

/* One merge given as text: "left right" lines or [left, right] pairs. */
typedef struct {
    const char *left, *right;
    size_t left_len, right_len;
} tok_merge_text;

struct qn_tokenizer {
    qn_tok_kind kind;
    size_t n_vocab;
    char *pool;            /* every piece, each NUL-terminated */
    size_t *piece_off;     /* (n_vocab) offset into pool */
    uint32_t *piece_len;   /* (n_vocab) bytes, without the NUL */
    float *score;          /* (n_vocab) */
    int32_t *type;         /* (n_vocab) qn_tok_type */
    int bos_id, eos_id, unk_id;
    bool add_bos, add_eos;
    bool add_dummy_prefix; /* SPM: "▁" before each text segment */
    bool prefix_first_only;/* SPM: ...only before the segment at offset 0 (Metaspace "first") */
    bool split_words;      /* SPM: BPE per "▁"-started word (Metaspace split: true) */
    bool byte_fallback;    /* SPM: unknown characters become <0xXX> tokens */
    bool fuse_unk;         /* consecutive unknown characters give one <unk> */
    bool ignore_merges;    /* byte-level: a pre-token found in the vocab is emitted whole */
    bool ranked;           /* merges from a ranked list (else SPM score order) */
    bool fallback_merges;  /* some merge takes a byte or <unk> token (else those never merge) */
    bool meta_words;       /* SPM: no piece has "▁" after another character, so no
                              merge crosses the start of a "▁..." word */
    size_t n_merges;
    int32_t *merge_left, *merge_right, *merge_result; /* (n_merges) ids; rank = index */
    tok_hash pieces;       /* piece bytes -> id */
    tok_hash pairs;        /* (left id, right id) -> rank */
    int32_t byte_token[256];   /* SPM: id of "<0xXX>"; byte-level: id of the mapped char; -1 */
    uint16_t byte_char[256];   /* byte-level: GPT-2 bytes_to_unicode code point of each byte */
    int16_t char_byte[512];    /* inverse of byte_char (code points < 512), -1 elsewhere */
    char *split_regex;         /* byte-level pre-tokenizer pattern (owned) */
    pcre2_code *re;            /* compiled split_regex, JIT when available */
    int32_t *special;          /* (n_special) ids matched literally, by first byte then longest */
    size_t n_special;
    uint32_t special_start[257]; /* special[special_start[b] .. special_start[b+1]) start with byte b */
};

/* A loader's view of a vocabulary: the public spec plus what tokenizer.json and
   tokenizer.bin add. pieces may contain any bytes when piece_lens is given. */
typedef struct {
    qn_tok_spec s;
    const uint32_t *piece_lens;          /* (n_vocab) or NULL: strlen */
    const tok_merge_text *merge_pairs;   /* (s.n_merges) used instead of s.merges */
    bool ranked;                         /* merge by rank even when the list is empty */
    bool byte_fallback, fuse_unk, ignore_merges, prefix_first_only, split_words;
} tok_build_spec;

/* Builds the tables; `what` names the source in messages (a path, "tokenizer spec"). */
qn_status tok_build(qn_tokenizer **out, const tok_build_spec *b, const char *what, qn_err *err);

/* Compiles the byte-level split pattern into t->re (tokenizer_encode.c). */
qn_status tok_compile_regex(qn_tokenizer *t, const char *pattern, const char *what, qn_err *err);

int tok_lookup(const qn_tokenizer *t, const char *s, size_t n);       /* -1 when absent */
int tok_pair_rank(const qn_tokenizer *t, int32_t left, int32_t right); /* -1 when no merge */
const char *tok_piece_ptr(const qn_tokenizer *t, int id);

/* Length of the valid UTF-8 character at s (1-4), 0 when s[0] starts no valid
   character (stray continuation, overlong, surrogate, > U+10FFFF, truncated). */
size_t tok_utf8_char(const unsigned char *s, size_t avail);

/* True for tokens that split the text into segments when matched literally. */
static inline bool tok_is_special_type(int32_t type)
{
    return type == QN_TOKTYPE_CONTROL || type == QN_TOKTYPE_USER_DEFINED ||
           type == QN_TOKTYPE_UNKNOWN;
}

#endif
