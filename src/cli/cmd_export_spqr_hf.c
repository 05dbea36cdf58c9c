/* cmd_export_spqr_hf.c: `quench export-spqr-hf RUN OUTDIR`: a finished SpQR
   run in quench's layout (w3, 3-bit statistics, 16x16) rewritten in the Hugging
   Face SpQR layout, as `quench quantize` does into RUN/hf-spqr. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "cli/session.h"
#include "engine/spqr_hf.h"

static const char k_usage[] = "quench export-spqr-hf RUN OUTDIR";

int qn_cmd_export_spqr_hf(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s\n", k_usage);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "quench export-spqr-hf: expected 2 arguments\nusage: %s\n", k_usage);
        return 2;
    }
    qn_err err = {0};
    if (qn_spqr_hf_export(argv[1], argv[2], &err)) return qn_cli_fail("export-spqr-hf", &err);
    printf("wrote %s (the Hugging Face SpQR layout, for transformers)\n", argv[2]);
    return 0;
}
