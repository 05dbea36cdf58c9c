/* keys.c: the key table (see keys.h). Rows of a screen come before the global
   rows they override (Eval's `g` generates; elsewhere `g` goes to the top).
   A row whose help is NULL is an alias of the row above it. */
#include "tui/keys.h"

#include "tui/app.h"
#include "tui/curses.h"

#define G QN_KEYS_GLOBAL
#define CTRL(c) ((c) & 0x1f)

static const qn_key_binding k_keys[] = {
    /* Models */
    { QN_SCR_MODELS, '\n', "Enter", QN_ACT_OPEN, "use the selected model (info, then Budget)", 2, "Use" },
    { QN_SCR_MODELS, 'o', "o", QN_ACT_BROWSE, "browse for a model folder, GGUF or llama2.c file", 3, "Browse" },
    { QN_SCR_MODELS, 'x', "x", QN_ACT_FORGET, "forget the selected recent model", 0, NULL },
    { QN_SCR_MODELS, KEY_DC, "Del", QN_ACT_FORGET, NULL, 0, NULL },
    /* Budget */
    { QN_SCR_BUDGET, '\n', "Enter", QN_ACT_EDIT, "edit the selected field (type a value)", 2, "Edit" },
    { QN_SCR_BUDGET, KEY_LEFT, "Left/h/-", QN_ACT_DEC, "previous value / smaller", 0, NULL },
    { QN_SCR_BUDGET, 'h', "h", QN_ACT_DEC, NULL, 0, NULL },
    { QN_SCR_BUDGET, '-', "-", QN_ACT_DEC, NULL, 0, NULL },
    { QN_SCR_BUDGET, KEY_RIGHT, "Right/l/+", QN_ACT_INC, "next value / larger", 3, "Change" },
    { QN_SCR_BUDGET, 'l', "l", QN_ACT_INC, NULL, 0, NULL },
    { QN_SCR_BUDGET, '+', "+", QN_ACT_INC, NULL, 0, NULL },
    { QN_SCR_BUDGET, 's', "s", QN_ACT_START, "start the run (Run screen)", 4, "Start" },
    { QN_SCR_BUDGET, 'S', "S", QN_ACT_START_PAUSED, "start the run paused (step it with `.`)", 0, NULL },
    /* Run */
    { QN_SCR_RUN, 's', "s", QN_ACT_START, "start a run with the Budget settings", 2, "Start" },
    { QN_SCR_RUN, 'S', "S", QN_ACT_START_PAUSED, "start paused, to step layer by layer", 0, NULL },
    { QN_SCR_RUN, 'p', "p/Space", QN_ACT_PAUSE, "pause or resume the run", 3, "Pause" },
    { QN_SCR_RUN, ' ', "Space", QN_ACT_PAUSE, NULL, 0, NULL },
    { QN_SCR_RUN, '.', ".", QN_ACT_STEP, "run until the next layer is done, then pause", 4, "Step" },
    { QN_SCR_RUN, 'c', "c", QN_ACT_CANCEL, "cancel the run (asks first)", 5, "Cancel" },
    { QN_SCR_RUN, 'r', "r", QN_ACT_RESUME, "resume a cancelled run from its last finished block", 0, NULL },
    { QN_SCR_RUN, 'o', "o", QN_ACT_OPEN_RUN, "open a run folder from disk (to inspect, evaluate or resume)", 0, NULL },
    { QN_SCR_RUN, 'f', "f", QN_ACT_FOLLOW, "follow the newest layer in the table", 0, NULL },
    { QN_SCR_RUN, '\n', "Enter", QN_ACT_OPEN, "inspect the selected layer", 6, "Inspect" },
    /* Runs */
    { QN_SCR_RUNS, '\n', "Enter", QN_ACT_OPEN, "open the selected run in Inspect (nothing is quantized)", 2, "Inspect" },
    { QN_SCR_RUNS, ' ', "Space", QN_ACT_MARK, "mark the run as A or B: the two marked are compared", 3, "Mark" },
    { QN_SCR_RUNS, 'r', "r", QN_ACT_RESCAN, "read the run folders again", 4, "Reread" },
    /* Inspect */
    { QN_SCR_INSPECT, '\n', "Enter", QN_ACT_FULLSCREEN, "picture full screen / back", 2, "Full" },
    { QN_SCR_INSPECT, 'v', "v", QN_ACT_PIC_NEXT, "next picture kind", 3, "View" },
    { QN_SCR_INSPECT, 'w', "w", QN_ACT_PIC_WEIGHTS, "weights (original, signed)", 0, NULL },
    { QN_SCR_INSPECT, 'e', "e", QN_ACT_PIC_ERROR, "error (W - W_hat)^2 * diag(H)", 0, NULL },
    { QN_SCR_INSPECT, 'o', "o", QN_ACT_PIC_OUTLIERS, "outliers (SpQR)", 0, NULL },
    { QN_SCR_INSPECT, 'b', "b", QN_ACT_PIC_CODEBOOK, "codebook usage (AQLM)", 0, NULL },
    { QN_SCR_INSPECT, 'H', "H", QN_ACT_PIC_HESSIAN, "hessian diagonal", 0, NULL },
    { QN_SCR_INSPECT, '+', "+", QN_ACT_ZOOM_IN, "zoom in at the cursor (arrows move it)", 4, "Zoom" },
    { QN_SCR_INSPECT, '=', "=", QN_ACT_ZOOM_IN, NULL, 0, NULL },
    { QN_SCR_INSPECT, '-', "-", QN_ACT_ZOOM_OUT, "zoom out", 0, NULL },
    { QN_SCR_INSPECT, '0', "0", QN_ACT_ZOOM_RESET, "whole matrix", 0, NULL },
    { QN_SCR_INSPECT, 'x', "x", QN_ACT_EXPORT, "export the picture to PNG (asks for a name)", 5, "PNG" },
    /* Evaluate */
    { QN_SCR_EVAL, 'p', "p", QN_ACT_PPL, "perplexity of original and compressed, side by side", 2, "PPL" },
    { QN_SCR_EVAL, 'g', "g", QN_ACT_GENERATE, "generate from the prompt (streams)", 3, "Generate" },
    { QN_SCR_EVAL, 'e', "e/Enter", QN_ACT_PROMPT, "edit the prompt", 4, "Prompt" },
    { QN_SCR_EVAL, '\n', "Enter", QN_ACT_PROMPT, NULL, 0, NULL },
    { QN_SCR_EVAL, 'm', "m", QN_ACT_TOGGLE_MODEL, "generate with the original or the compressed model", 0, NULL },
    { QN_SCR_EVAL, 't', "t", QN_ACT_TEMP_DOWN, "temperature - 0.1", 0, NULL },
    { QN_SCR_EVAL, 'T', "T", QN_ACT_TEMP_UP, "temperature + 0.1", 0, NULL },
    { QN_SCR_EVAL, '<', "<", QN_ACT_LEN_DOWN, "fewer tokens to generate", 0, NULL },
    { QN_SCR_EVAL, '>', ">", QN_ACT_LEN_UP, "more tokens to generate", 0, NULL },
    { QN_SCR_EVAL, 'f', "f", QN_ACT_TEXT_FILE, "choose the evaluation text and context", 0, NULL },
    { QN_SCR_EVAL, 'c', "c", QN_ACT_CANCEL, "stop the perplexity or the generation", 5, "Stop" },
    /* File browser */
    { QN_KEYS_BROWSER, '\n', "Enter", QN_ACT_OPEN, "open a folder; choose a model folder or file", 1, "Open" },
    { QN_KEYS_BROWSER, KEY_RIGHT, "Right/l", QN_ACT_RIGHT, "enter the folder", 0, NULL },
    { QN_KEYS_BROWSER, 'l', "l", QN_ACT_RIGHT, NULL, 0, NULL },
    { QN_KEYS_BROWSER, KEY_LEFT, "Left/h/BS", QN_ACT_PARENT, "parent folder", 2, "Up" },
    { QN_KEYS_BROWSER, 'h', "h", QN_ACT_PARENT, NULL, 0, NULL },
    { QN_KEYS_BROWSER, KEY_BACKSPACE, "BS", QN_ACT_PARENT, NULL, 0, NULL },
    { QN_KEYS_BROWSER, 127, "BS", QN_ACT_PARENT, NULL, 0, NULL },
    { QN_KEYS_BROWSER, '.', ".", QN_ACT_CHOOSE_HERE, "choose the folder shown as the model", 3, "This" },
    { QN_KEYS_BROWSER, ':', ":", QN_ACT_GOTO, "type a path to go to (or open)", 4, "Path" },
    { QN_KEYS_BROWSER, '~', "~", QN_ACT_HOME_DIR, "home folder", 0, NULL },
    { QN_KEYS_BROWSER, 'H', "H", QN_ACT_HIDDEN, "show or hide hidden files", 0, NULL },
    { QN_KEYS_BROWSER, '/', "/", QN_ACT_FILTER, "filter the names", 5, "Filter" },
    { QN_KEYS_BROWSER, 27, "Esc", QN_ACT_BACK, "close the browser", 6, "Close" },
    { QN_KEYS_BROWSER, 'q', "q", QN_ACT_BACK, NULL, 0, NULL },
    /* Dialogs */
    { QN_KEYS_DIALOG, 'y', "y/Enter", QN_ACT_YES, "yes / OK", 1, "Yes" },
    { QN_KEYS_DIALOG, '\n', "Enter", QN_ACT_YES, NULL, 0, NULL },
    { QN_KEYS_DIALOG, 'n', "n/Esc", QN_ACT_NO, "no / close", 2, "No" },
    { QN_KEYS_DIALOG, 27, "Esc", QN_ACT_NO, NULL, 0, NULL },
    { QN_KEYS_DIALOG, 'q', "q", QN_ACT_NO, NULL, 0, NULL },
    /* Global */
    { G, KEY_F(1), "F1/?", QN_ACT_HELP, "help: the keys of this screen", 1, "Help" },
    { G, '?', "?", QN_ACT_HELP, NULL, 0, NULL },
    { G, '1', "1-6", QN_ACT_SCREEN_MODELS, "screens: Models Budget Run Inspect Eval Runs", 8, "Screens" },
    { G, '2', "2", QN_ACT_SCREEN_BUDGET, NULL, 0, NULL },
    { G, '3', "3", QN_ACT_SCREEN_RUN, NULL, 0, NULL },
    { G, '4', "4", QN_ACT_SCREEN_INSPECT, NULL, 0, NULL },
    { G, '5', "5", QN_ACT_SCREEN_EVAL, NULL, 0, NULL },
    { G, '6', "6", QN_ACT_SCREEN_RUNS, NULL, 0, NULL },
    { G, KEY_F(2), "F2-F7", QN_ACT_SCREEN_MODELS, "the same screens", 0, NULL },
    { G, KEY_F(3), "F3", QN_ACT_SCREEN_BUDGET, NULL, 0, NULL },
    { G, KEY_F(4), "F4", QN_ACT_SCREEN_RUN, NULL, 0, NULL },
    { G, KEY_F(5), "F5", QN_ACT_SCREEN_INSPECT, NULL, 0, NULL },
    { G, KEY_F(6), "F6", QN_ACT_SCREEN_EVAL, NULL, 0, NULL },
    { G, KEY_F(7), "F7", QN_ACT_SCREEN_RUNS, NULL, 0, NULL },
    { G, '\t', "Tab", QN_ACT_NEXT_PANE, "next pane (Shift-Tab: previous)", 0, NULL },
    { G, KEY_BTAB, "S-Tab", QN_ACT_PREV_PANE, NULL, 0, NULL },
    { G, KEY_UP, "Up/k", QN_ACT_UP, "move up", 0, NULL },
    { G, 'k', "k", QN_ACT_UP, NULL, 0, NULL },
    { G, KEY_DOWN, "Down/j", QN_ACT_DOWN, "move down", 0, NULL },
    { G, 'j', "j", QN_ACT_DOWN, NULL, 0, NULL },
    { G, KEY_LEFT, "Left/h", QN_ACT_LEFT, "move left", 0, NULL },
    { G, 'h', "h", QN_ACT_LEFT, NULL, 0, NULL },
    { G, KEY_RIGHT, "Right/l", QN_ACT_RIGHT, "move right", 0, NULL },
    { G, 'l', "l", QN_ACT_RIGHT, NULL, 0, NULL },
    { G, KEY_PPAGE, "PgUp", QN_ACT_PAGE_UP, "page up", 0, NULL },
    { G, KEY_NPAGE, "PgDn", QN_ACT_PAGE_DOWN, "page down", 0, NULL },
    { G, KEY_HOME, "Home/g", QN_ACT_HOME, "first row", 0, NULL },
    { G, 'g', "g", QN_ACT_HOME, NULL, 0, NULL },
    { G, KEY_END, "End/G", QN_ACT_END, "last row", 0, NULL },
    { G, 'G', "G", QN_ACT_END, NULL, 0, NULL },
    { G, '\n', "Enter", QN_ACT_OPEN, "open", 0, NULL },
    { G, '\r', "Enter", QN_ACT_OPEN, NULL, 0, NULL },
    { G, KEY_ENTER, "Enter", QN_ACT_OPEN, NULL, 0, NULL },
    { G, 27, "Esc", QN_ACT_BACK, "back to the previous screen, close a dialog", 0, NULL },
    { G, '/', "/", QN_ACT_FILTER, "filter the list (Esc clears)", 0, NULL },
    { G, CTRL('l'), "C-l", QN_ACT_REDRAW, "redraw the screen", 0, NULL },
    { G, CTRL('c'), "C-c", QN_ACT_INTERRUPT, "quit (asks first while a job runs)", 0, NULL },
    { G, KEY_F(10), "F10/q", QN_ACT_QUIT, "quit (asks first while a job runs)", 9, "Quit" },
    { G, 'q', "q", QN_ACT_QUIT, NULL, 0, NULL },
};

const qn_key_binding *qn_keys_table(size_t *n)
{
    *n = sizeof k_keys / sizeof k_keys[0];
    return k_keys;
}

qn_action qn_keys_action(int context, int key)
{
    if (key == '\r' || key == KEY_ENTER) key = '\n';
    for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++)
        if (k_keys[i].screen == context && k_keys[i].key == key) return k_keys[i].act;
    if (context == QN_KEYS_DIALOG) return QN_ACT_NONE;
    for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++)
        if (k_keys[i].screen == G && k_keys[i].key == key) return k_keys[i].act;
    return QN_ACT_NONE;
}

size_t qn_keys_bar(int screen, const qn_key_binding **out, size_t cap)
{
    size_t n = 0;
    for (int pos = 1; pos <= 9 && n < cap; pos++)
        for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0] && n < cap; i++)
            if (k_keys[i].bar == pos &&
                (k_keys[i].screen == screen || (k_keys[i].screen == G && screen < QN_KEYS_BROWSER)))
                out[n++] = &k_keys[i];
    return n;
}
