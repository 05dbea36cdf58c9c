/* main.c: quench with no arguments opens the workbench; otherwise dispatch a subcommand. */
#include "cli/commands.h"

int main(int argc, char **argv)
{
    return qn_cli_main(argc, argv);
}
