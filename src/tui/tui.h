/* tui.h: the workbench, `quench` with no arguments: a full-screen ncurses
   application over the whole engine (Models, Budget, Run, Inspect, Evaluate).
   Returns the process exit code; the terminal is restored on every way out. */
#ifndef QN_TUI_H
#define QN_TUI_H

int qn_tui_main(int argc, char **argv);

#endif
