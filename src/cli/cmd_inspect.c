/* cmd_inspect.c: `quench inspect MODEL [--json]`: architecture, parameter count,
   every tensor's dtype and shape, size on disk. */
#include "cli/commands.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/fileio.h"
#include "engine/gguf.h"
#include "engine/json_file.h"
#include "engine/ggml_quants.h"
#include "engine/llama_layout.h"
#include "engine/model.h"
#include "engine/model_hf.h"
#include "engine/qmethod.h"

static const char k_usage[] = "quench inspect MODEL [--json]";

static const char k_help[] =
    "usage: quench inspect MODEL [--json]\n"
    "Architecture, parameter count, every tensor's dtype and shape, size on disk; for a quench run\n"
    "folder its quantization too.\n"
    "MODEL: a Hugging Face folder, a quench run folder, a .gguf file or a llama2.c .bin.\n"
    "\n"
    "  --json               stdout holds one JSON object (architecture, parameters, tensors[], ...)\n"
    "\n"
    "examples:\n"
    "  quench inspect assets/stories260K\n"
    "  quench inspect ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf --json\n";

static qn_status gguf_tensors(const char *path, qn_tensor_list *l, qn_err *err)
{
    qn_gguf_file *f = NULL;
    qn_status s = qn_gguf_open(&f, path, err);
    if (s) return s;
    const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    for (size_t i = 0; i < qn_gguf_tensor_count(f) && !s; i++) {
        const qn_gguf_tensor *t = qn_gguf_tensor_at(f, i);
        int64_t shape[QN_TENSOR_INFO_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d]; /* row-major order, like HF */
        s = qn_tensor_list_add(l, t->name, qn_ggml_type_name(t->type), t->ndim, shape, t->nbytes, file, err);
    }
    struct stat st;
    if (!s && stat(path, &st) == 0) { l->n_files = 1; l->file_bytes = (uint64_t)st.st_size; }
    qn_gguf_close(f);
    return s;
}

static qn_status llama2c_tensors(const char *path, const qn_config *cfg, qn_tensor_list *l, qn_err *err)
{
    const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t n = qn_llama_n_tensors(cfg);
    qn_status s = QN_OK;
    for (size_t i = 0; i < n && !s; i++) {
        qn_tensor_desc d = qn_llama_tensor(cfg, i);
        size_t numel = (size_t)d.shape[0] * (size_t)(d.ndim == 2 ? d.shape[1] : 1);
        s = qn_tensor_list_add(l, d.name, "F32", d.ndim, d.shape, numel * 4, file, err);
    }
    struct stat st;
    if (!s && stat(path, &st) == 0) { l->n_files = 1; l->file_bytes = (uint64_t)st.st_size; }
    return s;
}

static const char *kind_name(qn_source_kind k)
{
    return k == QN_SRC_HF ? "huggingface" : k == QN_SRC_GGUF ? "gguf" : "llama2c";
}

/* What a quantized folder holds, or NULL (one static buffer). */
static const char *quantization_line(const char *path, qn_source_kind kind, char *method, size_t cap)
{
    static char line[256];
    qn_quant_config q;
    bool found = false;
    qn_err err = {0};
    if (kind != QN_SRC_HF || qn_qmethod_config_read(path, &found, method, cap, &q, &err) || !found) return NULL;
    qn_quant_config_describe(&q, line, sizeof line);
    return line;
}

static void print_text(const char *path, qn_source_kind kind, const qn_config *c, const qn_tensor_list *l)
{
    printf("%s (%s)\n", path, kind_name(kind));
    printf("  architecture   %s\n", c->arch);
    printf("  parameters     %lld\n", qn_config_n_params(c));
    printf("  layers %d, hidden %d, intermediate %d, heads %d, kv heads %d, head_dim %d, vocab %d\n",
           c->n_layers, c->dim, c->hidden_dim, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size);
    printf("  context %d, rope_theta %g%s, rms_eps %g, tied embeddings %s\n", c->max_seq_len, c->rope_theta,
           c->rope_scaling == QN_ROPE_SCALING_LLAMA3 ? " (llama3 scaling)"
           : c->rope_scaling == QN_ROPE_SCALING_LINEAR ? " (linear scaling)" : "",
           c->rms_eps, c->tie_embeddings ? "yes" : "no");
    char method[32];
    const char *quant = quantization_line(path, kind, method, sizeof method);
    if (quant) printf("  quantization   %s: %s\n", method, quant);
    printf("  size on disk   %llu bytes in %zu file(s)\n\n", (unsigned long long)l->file_bytes, l->n_files);
    for (size_t i = 0; i < l->n; i++) {
        const qn_tensor_info *t = &l->tensors[i];
        char shape[96] = "[";
        for (int d = 0; d < t->ndim; d++) {
            char part[24];
            snprintf(part, sizeof part, d ? ", %lld" : "%lld", (long long)t->shape[d]);
            strncat(shape, part, sizeof shape - strlen(shape) - 2);
        }
        strcat(shape, "]");
        printf("  %-48s %-6s %-16s %10zu\n", t->name, t->dtype, shape, t->nbytes);
    }
}

static void print_json(const char *path, qn_source_kind kind, const qn_config *c, const qn_tensor_list *l)
{
    json_t *tensors = json_array();
    for (size_t i = 0; i < l->n; i++) {
        const qn_tensor_info *t = &l->tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I, s:s}", "name", t->name, "dtype", t->dtype,
                                                 "shape", shape, "nbytes", (json_int_t)t->nbytes, "file", t->file));
    }
    json_t *o = json_pack("{s:o, s:s, s:s, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:I, s:o}",
                          "path", qn_json_text(path), "format", kind_name(kind), "architecture", c->arch,
                          "parameters", (json_int_t)qn_config_n_params(c), "layers", c->n_layers,
                          "hidden_size", c->dim, "intermediate_size", c->hidden_dim, "heads", c->n_heads,
                          "kv_heads", c->n_kv_heads, "head_dim", c->head_dim, "vocab_size", c->vocab_size,
                          "context", c->max_seq_len, "rope_theta", (double)c->rope_theta,
                          "tie_embeddings", c->tie_embeddings, "size_bytes", (json_int_t)l->file_bytes,
                          "tensors", tensors);
    char method[32];
    const char *quant = quantization_line(path, kind, method, sizeof method);
    if (quant) json_object_set_new(o, "quantization", json_pack("{s:s, s:s}", "quant_method", method, "summary", quant));
    json_dumpf(o, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(o);
}

int qn_cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'j') json = true;
        else if (ch == 'h') return qn_arg_help(k_help);
        else return qn_arg_bad_option("inspect", longopts, argc, argv);
    }
    if (optind != argc - 1) return qn_arg_usage_error("inspect", k_usage, "expected one MODEL");
    const char *path = argv[optind];
    qn_err err = {0};
    qn_config cfg;
    qn_weight_source src = {0};
    qn_source_kind kind;
    qn_tensor_list list;
    qn_tensor_list_init(&list);
    int rc = 0;
    qn_status s = qn_model_source_open(path, &cfg, &src, NULL, &kind, &err);
    if (!s) {
        s = kind == QN_SRC_HF ? qn_hf_model_tensors(path, &list, &err)
          : kind == QN_SRC_GGUF ? gguf_tensors(path, &list, &err)
          : llama2c_tensors(path, &cfg, &list, &err);
    }
    char method[32];
    if (!s && quantization_line(path, kind, method, sizeof method)) {
        /* stored linears that disagree with the config are refused here as ppl refuses them */
        qn_model *m = NULL;
        s = qn_model_open(&m, path, &(qn_model_opts){0}, &err);
        qn_model_close(m);
    }
    if (s) rc = qn_cli_fail("inspect", &err);
    else if (json) print_json(path, kind, &cfg, &list);
    else print_text(path, kind, &cfg, &list);
    qn_tensor_list_done(&list);
    if (src.close) src.close(src.ctx);
    return rc;
}
