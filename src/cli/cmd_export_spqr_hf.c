/* cmd_export_spqr_hf.c: `quench export-spqr-hf RUN OUTDIR`: a finished SpQR
   run in quench's layout (w3, 3-bit statistics, 16x16) rewritten in the Hugging
   Face SpQR layout, as `quench quantize` does into RUN/hf-spqr. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/session.h"
#include "engine/run_lock.h"
#include "engine/spqr_hf.h"

static const char k_usage[] = "quench export-spqr-hf RUN OUTDIR";

static const char k_help[] =
    "usage: quench export-spqr-hf RUN OUTDIR\n"
    "Rewrites a finished SpQR w3 16x16 run in the Hugging Face SpQR layout (what transformers' SpQR\n"
    "integration reads; `quantize` also writes it into RUN/hf-spqr). No options.\n"
    "\n"
    "example:\n"
    "  quench export-spqr-hf runs/stories260K-spqr-3.6 out/stories260K-spqr-hf\n";

int qn_cmd_export_spqr_hf(int argc, char **argv)
{
    int early = qn_arg_positional_help("export-spqr-hf", k_usage, k_help, argc, argv, 2);
    if (early >= 0) return early;
    qn_err err = {0};
    qn_run_lock lock;   /* no quantize may rewrite RUN while it is read */
    if (qn_run_lock_take(&lock, argv[1], &err) || qn_spqr_hf_export(argv[1], argv[2], &err)) {
        qn_run_lock_release(&lock);
        return qn_cli_fail("export-spqr-hf", &err);
    }
    qn_run_lock_release(&lock);
    printf("wrote %s (the Hugging Face SpQR layout, for transformers)\n", argv[2]);
    return 0;
}
