/* model_hf.h: a Hugging Face model folder as a weight source: config.json plus
   either model.safetensors or model.safetensors.index.json and its shards (the
   layout transformers' save_pretrained writes). Tensors are handed out as f32 in
   Hugging Face layout: F32 data aligned to 4 bytes is used in place (read-only,
   inside the mapping), F16 and BF16 are converted into a buffer the caller owns.
   Also lists every tensor of a folder for `quench inspect` in a plain struct
   that other sources (GGUF) can fill the same way. */
#ifndef QN_MODEL_HF_H
#define QN_MODEL_HF_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "engine/config.h"
#include "engine/weights.h"

/* Reads dir/config.json (validated by qn_config_load_hf) and opens the weights.
   On success src->get/has/close serve tensors by Hugging Face name; src->path
   is dir. Data of tensors with owned = false lives until src->close and must
   not be written (the mapping is read-only). On failure src is zeroed. */
qn_status qn_hf_model_open(const char *dir, qn_config *cfg, qn_weight_source *src, qn_err *err);

#define QN_TENSOR_INFO_MAX_DIMS 8

typedef struct {
    const char *name;      /* as stored: "model.layers.0.mlp.up_proj.weight" */
    const char *dtype;     /* static string: "F32", "BF16"; a GGUF source would say "Q4_K" */
    int         ndim;
    int64_t     shape[QN_TENSOR_INFO_MAX_DIMS];
    size_t      nbytes;    /* bytes on disk */
    const char *file;      /* the file holding it, relative to the model folder */
} qn_tensor_info;

typedef struct {
    qn_tensor_info *tensors;      /* (n) file by file, in data-offset order within a file */
    size_t          n, cap;
    size_t          n_files;      /* weight files read */
    uint64_t        file_bytes;   /* their total size on disk, headers included */
    uint64_t        tensor_bytes; /* sum of tensors[i].nbytes */
} qn_tensor_list;

void      qn_tensor_list_init(qn_tensor_list *l);
/* Appends one tensor, copying name and file; dtype must be a static string.
   Adds nbytes to tensor_bytes; n_files and file_bytes are the filler's to set. */
qn_status qn_tensor_list_add(qn_tensor_list *l, const char *name, const char *dtype, int ndim,
                             const int64_t *shape, size_t nbytes, const char *file, qn_err *err);
void      qn_tensor_list_done(qn_tensor_list *l);   /* frees and zeroes; zeroed is fine */

/* Every tensor the folder's weights provide (for a sharded folder, those in the
   index's weight_map), without reading config.json. out is initialized here. */
qn_status qn_hf_model_tensors(const char *dir, qn_tensor_list *out, qn_err *err);

#endif
