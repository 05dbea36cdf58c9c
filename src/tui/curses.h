/* curses.h: the one include of ncurses for the workbench (wide-character
   ncursesw: UTF-8 strings are drawn as characters, not bytes). Only files of
   src/tui include it, and only the UI thread calls into it. */
#ifndef QN_TUI_CURSES_H
#define QN_TUI_CURSES_H
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <ncurses.h>
#endif
