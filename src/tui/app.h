/* app.h: the workbench's state and the commands screens ask for. The UI thread
   owns all of it: messages from workers (evq.h) are applied here (state only,
   no drawing), screens read it to draw and call qn_app_* to start, pause or
   cancel work. A screen is a small function table in htop's Panel manner, one
   file per screen (screen_*.c); its view state (cursor, scroll) is its own. */
#ifndef QN_TUI_APP_H
#define QN_TUI_APP_H
#include <stdbool.h>
#include <stddef.h>
#include "status.h"
#include "engine/quantize.h"
#include "tui/evq.h"
#include "tui/jobs.h"
#include "tui/keys.h"
#include "tui/recent.h"
#include "tui/theme.h"
#include "tui/widgets.h"
#include "tui/worker.h"
#include "viz/cells.h"

typedef enum { QN_SCR_MODELS = 0, QN_SCR_BUDGET, QN_SCR_RUN, QN_SCR_INSPECT, QN_SCR_EVAL, QN_SCR_RUNS, QN_SCR_COUNT } qn_screen_id;

typedef enum { QN_UI_IGNORED = 0, QN_UI_HANDLED = 1 << 0, QN_UI_REDRAW = 1 << 1 } qn_ui_result;

enum { QN_JOB_INFO = 1, QN_JOB_RUN, QN_JOB_PPL, QN_JOB_GEN, QN_JOB_LAYER, QN_JOB_EXPORT, QN_JOB_OPENRUN };

struct qn_app;

typedef struct qn_screen {
    const char  *title;
    void         (*draw)(struct qn_screen *s, struct qn_app *app, qn_box area);
    qn_ui_result (*on_action)(struct qn_screen *s, struct qn_app *app, qn_action act, int key);
    /* Optional: a click at (y, x) inside the area last drawn. */
    qn_ui_result (*on_click)(struct qn_screen *s, struct qn_app *app, int y, int x);
    /* Optional: a dialog this screen opened was confirmed (input: its text). */
    void         (*on_dialog)(struct qn_screen *s, struct qn_app *app, int cmd, const char *input);
    /* Optional: true while a text box of the screen takes raw keys. */
    bool         (*editing)(struct qn_screen *s);
    void         (*free)(struct qn_screen *s);
    void         *priv;
} qn_screen;

qn_screen *qn_screen_models_create(void);
qn_screen *qn_screen_budget_create(void);
qn_screen *qn_screen_run_create(void);
qn_screen *qn_screen_inspect_create(void);
qn_screen *qn_screen_eval_create(void);
qn_screen *qn_screen_runs_create(void);
void       qn_screen_runs_rescan(qn_screen *s);   /* read the run folders again when next drawn */

/* ---- dialogs --------------------------------------------------------------- */

typedef enum { QN_DLG_NONE = 0, QN_DLG_MESSAGE, QN_DLG_CONFIRM, QN_DLG_INPUT } qn_dialog_kind;

/* Commands a dialog carries back to the app (owner -1) or to a screen. */
enum { QN_CMD_QUIT = 1, QN_CMD_CANCEL_RUN, QN_CMD_SCREEN_BASE = 100 };

typedef struct {
    qn_dialog_kind kind;
    bool           error;        /* shown in the error colours */
    char           title[64];
    char           text[1024];   /* may hold '\n' */
    qn_lineedit    input;
    int            owner;        /* qn_screen_id, or -1: the app */
    int            cmd;
} qn_dialog;

/* ---- the log pane ---------------------------------------------------------- */

#define QN_LOG_LINES 256
typedef enum { QN_LOG_INFO = 0, QN_LOG_GOOD, QN_LOG_WARN, QN_LOG_ERROR } qn_log_level;
typedef struct {
    char         line[QN_LOG_LINES][160];
    qn_log_level level[QN_LOG_LINES];
    size_t       n;              /* lines ever logged; the last QN_LOG_LINES are kept */
} qn_log;

/* ---- the quantization run -------------------------------------------------- */

typedef enum { QN_RUN_IDLE = 0, QN_RUN_RUNNING, QN_RUN_DONE, QN_RUN_FAILED, QN_RUN_CANCELLED } qn_run_phase;

#define QN_CONV_MAX 512
typedef struct {
    qn_run_phase     phase;
    qn_worker       *worker;
    qn_job_quantize *job;
    bool             cancelling;
    char             model[QN_PATH_CAP], out_dir[QN_PATH_CAP], label[96];
    int              n_blocks;          /* from RUN_START */
    int              first_block;
    double           projected_bits;
    qn_ui_layer    **layers;            /* (n_layers) in completion order */
    size_t           n_layers, cap_layers;
    char             stage[32];         /* the current stage and its counters */
    int              block;
    int64_t          done, total;
    double           value;
    double           t_start, t_end, t_last_layer;
    double           paused_total;      /* seconds spent paused so far */
    double           paused_at;         /* when the current pause began; 0 while running */
    double           conv[QN_CONV_MAX]; /* AQLM relative loss per round, current layer */
    size_t           n_conv;
    char             errmsg[512];
} qn_run;

/* ---- inspect --------------------------------------------------------------- */

typedef struct {
    size_t         sel;                 /* index into run.layers */
    qn_layer_data *data;                /* the loaded layer (a reference) */
    qn_worker     *loader;
    qn_job_layer  *job;
    bool           want_reload;         /* another layer was selected while loading */
    int            run_gen;             /* runs started so far: layer data of older runs is dropped */
    qn_worker     *exporter;
    qn_job_export *export_job;
} qn_inspect;

/* ---- evaluate -------------------------------------------------------------- */

typedef struct {
    char   model[48];                   /* "original", "rtn-4" */
    char   text[64];
    size_t ctx;
    double ppl;
    double ppl_pm;                      /* its standard error, in perplexity */
    size_t tokens;
    double seconds;
} qn_eval_row;

#define QN_EVAL_ROWS 16
typedef struct {
    char          text[QN_PATH_CAP];
    size_t        ctx, chunks;
    qn_worker    *ppl_worker;
    qn_job_ppl   *ppl_job;
    int           ppl_cur;              /* the model being measured: 0 original, 1 compressed */
    double        ppl_frac[2], ppl_value[2];
    bool          ppl_done[2];
    char          ppl_err[2][256];
    qn_eval_row   rows[QN_EVAL_ROWS];
    size_t        n_rows;
    qn_worker    *gen_worker;
    qn_job_gen   *gen_job;
    char          prompt[1024];
    float         temperature;
    size_t        n_new;
    bool          gen_compressed;
    char         *gen_out;              /* streamed text, malloc'd */
    size_t        gen_len, gen_cap;
    char          gen_status[128];
    /* side by side: with a compressed model, g generates from the original,
       then from the compressed one with the same seed */
    bool          gen_pair, gen_second;
    uint64_t      gen_seed;
    char         *gen_first;            /* the original's text, once the second starts; malloc'd */
    size_t        gen_first_len;
} qn_eval;

/* ---- the app --------------------------------------------------------------- */

typedef struct qn_app {
    qn_theme       theme;
    qn_evq        *queue;
    qn_screen     *screens[QN_SCR_COUNT];
    int            screen, prev_screen;
    bool           quit, dirty, help;
    size_t         help_top;
    qn_dialog      dialog;
    struct qn_browser *browser;         /* the modal file browser, or NULL */
    qn_box         area;                /* the screens' area in the last layout */
    char           exe_dir[QN_PATH_CAP];
    qn_recent      recent;
    qn_log         log;
    /* the model */
    char           model_path[QN_PATH_CAP];
    char           default_model[QN_PATH_CAP];  /* assets/stories260K, "" when not found */
    qn_model_info *info;                /* NULL until loaded */
    qn_worker     *info_worker;
    qn_job_info   *info_job;
    bool           info_then_budget;    /* go to Budget when the info arrives */
    /* budget */
    int            preset;              /* index into qn_presets(), -1: custom */
    qn_quant_config qcfg;
    char           calib[QN_PATH_CAP];
    char           out_dir[QN_PATH_CAP];/* "": automatic */
    qn_run         run;
    qn_worker     *open_worker;         /* reading a run folder from disk */
    bool           open_then_inspect;   /* go to Inspect when it is read (else the Run screen) */
    qn_job_openrun *open_job;
    qn_inspect     insp;
    qn_eval        eval;
} qn_app;

qn_status qn_app_init(qn_app *app, const char *argv0, qn_err *err);
/* Cancels and joins every worker, frees everything. */
void      qn_app_done(qn_app *app);
/* Applies one worker message to the state (takes what it owns). */
void      qn_app_apply(qn_app *app, qn_msg *m);
bool      qn_app_busy(const qn_app *app);   /* a run, perplexity or generation going */

void qn_app_log(qn_app *app, qn_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void qn_app_message(qn_app *app, bool error, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void qn_app_confirm(qn_app *app, int owner, int cmd, const char *title, const char *text);
void qn_app_input(qn_app *app, int owner, int cmd, const char *title, const char *prompt, const char *value);
/* A dialog closed: ok or not; routes the command. */
void qn_app_dialog_done(qn_app *app, bool ok);
void qn_app_switch(qn_app *app, int screen);
/* Quit, asking first while work is going. */
void qn_app_request_quit(qn_app *app);

/* Commands */
void qn_app_open_model(qn_app *app, const char *path, bool then_budget);
void qn_app_set_preset(qn_app *app, int index);
void qn_app_start_run(qn_app *app, bool paused);
/* Continues the last cancelled or failed run from its last finished block. */
void qn_app_resume_run(qn_app *app);
/* Shows a run folder from disk on the Run screen (then Inspect and Evaluate use it). */
void qn_app_open_run(qn_app *app, const char *dir);
void qn_app_pause_run(qn_app *app);
/* Seconds the run has been working at time now: paused time excluded. */
double qn_app_run_active(const qn_run *r, double now);
void qn_app_step_run(qn_app *app);
void qn_app_cancel_run(qn_app *app);
void qn_app_inspect_layer(qn_app *app, size_t index);
void qn_app_export_picture(qn_app *app, const char *path, qn_pic_kind kind, qn_region region);
void qn_app_start_ppl(qn_app *app);
void qn_app_start_gen(qn_app *app);
void qn_app_cancel_eval(qn_app *app);
/* The compressed model of the last finished run, or NULL. */
const char *qn_app_compressed_model(const qn_app *app);
/* Short name of a path: its last component. */
const char *qn_app_basename(const char *path);

#endif
