/* main.c: quench with no arguments opens the workbench; otherwise dispatch a subcommand. */
#include "cli/commands.h"
#include "engine/threads.h"

int main(int argc, char **argv)
{
    qn_threads_startup(argv);   /* before any OpenMP or BLAS call */
    return qn_cli_main(argc, argv);
}
