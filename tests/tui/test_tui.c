/* test_tui.c: the workbench driven as a user would, through the real binary
   ($QN_BIN) in a tmux pseudo-terminal: open the default model, a small RTN run
   stepped layer by layer then cancelled, a full run, perplexity and generation,
   resizes down to 80x24 and up, a bad model folder, Ctrl-C during a run, a
   crash signal, and the monochrome ASCII scheme. Each case checks that the
   terminal comes back as it was (stty settings, alternate screen left). Every
   wait polls the screen with a deadline, so a hang fails instead of blocking. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

/* Deadlines: the model opens in milliseconds; a stories260K run with 16
   samples takes about a second (several under ASan); waits allow for a loaded
   two-core machine without letting a hang go unnoticed. */
#define OPEN_MS 10000
#define RUN_MS 40000
#define STEP_MS 30000

typedef struct {
    char sock[64];
    char dir[128];
} tty;

static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static char *slurp(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) return strdup("");
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    pclose(p);
    return buf;
}

static char *screen(const tty *t)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p -t q 2>/dev/null", t->sock);
    return slurp(cmd);
}

static bool wait_for(const tty *t, const char *needle, int ms)
{
    for (int waited = 0; waited <= ms; waited += 50) {
        char *s = screen(t);
        bool hit = strstr(s, needle) != NULL;
        free(s);
        if (hit) return true;
        usleep(50 * 1000);
    }
    return false;
}

static void expect_screen(const tty *t, const char *needle, int ms)
{
    if (wait_for(t, needle, ms)) return;
    char *s = screen(t);
    cr_assert_fail("no '%s' on the screen after %d ms; screen:\n%s", needle, ms, s);
}

static void keys(const tty *t, const char *k)
{
    shell("tmux -L %s send-keys -t q %s", t->sock, k);
    usleep(60 * 1000);
}

static bool file_exists(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static char *read_small(const char *dir, const char *name)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "cat %s/%s 2>/dev/null", dir, name);
    return slurp(cmd);
}

/* Starts quench in a w x h tmux pane; env is extra "NAME=value ..." words. The
   pane's shell records stty before and after, the exit status and the pid. */
static void start(tty *t, int w, int h, const char *env)
{
    static int seq;
    ts_mkdtemp(t->dir, sizeof t->dir);
    snprintf(t->sock, sizeof t->sock, "qn-tui-%d-%d", (int)getpid(), seq++);
    const char *bin = getenv("QN_BIN");
    cr_assert(bin && *bin, "QN_BIN is not set");
    char script[300];
    snprintf(script, sizeof script, "%s/run.sh", t->dir);
    FILE *f = fopen(script, "w");
    cr_assert(f);
    fprintf(f, "cd %s\nstty -g > %s/before.stty\n", t->dir, t->dir);
    fprintf(f, "env XDG_STATE_HOME=%s/state QN_SHARED=%s %s sh -c 'echo $$ > %s/pid; exec \"$0\"' %s\n", t->dir,
            ts_shared(""), env ? env : "", t->dir, bin);
    fprintf(f, "echo $? > %s/rc.tmp; stty -g > %s/after.stty; mv %s/rc.tmp %s/rc\nexec sleep 600\n", t->dir, t->dir,
            t->dir, t->dir);
    fclose(f);
    int rc = shell("tmux -L %s -f /dev/null new-session -d -s q -x %d -y %d 'sh %s' \\; "
                   "set -g window-size manual", t->sock, w, h, script);
    cr_assert_eq(rc, 0, "tmux new-session failed");
}

static void stop(tty *t)
{
    shell("tmux -L %s kill-server 2>/dev/null", t->sock);
    const char *tmp = getenv("TMUX_TMPDIR");
    char sock[512];
    snprintf(sock, sizeof sock, "%s/tmux-%d/%s", tmp && *tmp ? tmp : "/tmp", (int)getuid(), t->sock);
    unlink(sock);
    char pid[64];
    char *p = read_small(t->dir, "pid");
    snprintf(pid, sizeof pid, "%s", p);
    free(p);
    if (atoi(pid) > 0) kill(atoi(pid), SIGKILL);
    ts_rmtree(t->dir);
}

/* Waits for the exit, then checks status and the terminal state. */
static void expect_exit(const tty *t, int status)
{
    for (int waited = 0; !file_exists(t->dir, "rc") && waited < OPEN_MS; waited += 50) usleep(50 * 1000);
    cr_assert(file_exists(t->dir, "rc"), "quench did not exit");
    char *rc = read_small(t->dir, "rc"), *before = read_small(t->dir, "before.stty"),
         *after = read_small(t->dir, "after.stty");
    cr_expect_eq(atoi(rc), status, "exit status %d, expected %d", atoi(rc), status);
    cr_expect(before[0] && strcmp(before, after) == 0, "stty changed: before %s after %s", before, after);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "tmux -L %s display -p -t q '#{alternate_on}'", t->sock);
    char *alt = slurp(cmd);
    cr_expect(alt[0] == '0', "the alternate screen is still on after exit (%s)", alt);
    char *s = screen(t);
    cr_expect(!strstr(s, "Sanitizer") && !strstr(s, "runtime error"), "sanitizer report after exit:\n%s", s);
    free(rc); free(before); free(after); free(alt); free(s);
}

/* A left click at a cell, press then release, in the X10 mouse encoding that
   tmux passes on (ESC [ M, then button, column and row plus 32; the bytes
   stay printable and quote-free for the cells the tests click). */
static void click(const tty *t, int x, int y)
{
    for (int b = 0; b < 2; b++)
        shell("tmux -L %s send-keys -t q -l '\033[M%c%c%c'", t->sock, b ? 32 + 3 : 32, 33 + x, 33 + y);
    usleep(100 * 1000);
}

static void open_default(const tty *t)
{
    expect_screen(t, "LlamaForCausalLM", OPEN_MS);
    expect_screen(t, "260,032", OPEN_MS);
}

TestSuite(tui, .timeout = 90);

Test(tui, opens_the_default_model_and_quits)
{
    tty t;
    start(&t, 100, 30, NULL);
    open_default(&t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "tmux -L %s display -p -t q '#{alternate_on}'", t.sock);
    char *alt = slurp(cmd);
    cr_expect(alt[0] == '1', "the workbench is not on the alternate screen (%s)", alt);
    free(alt);
    keys(&t, "F1");
    expect_screen(&t, "Help", OPEN_MS);
    expect_screen(&t, "browse for a model folder", OPEN_MS);
    keys(&t, "Escape");
    keys(&t, "q");
    expect_exit(&t, 0);
    char *recent = read_small(t.dir, "state/quench/recent.json");
    cr_expect(strstr(recent, "assets/stories260K"), "recent.json does not remember the model: %s", recent);
    free(recent);
    stop(&t);
}

Test(tui, opens_a_gguf_file_from_the_browser)
{
    tty t;
    start(&t, 100, 30, NULL);
    open_default(&t);
    keys(&t, "o");
    expect_screen(&t, "Open a model", OPEN_MS);
    keys(&t, ": C-u");
    char k[600];
    snprintf(k, sizeof k, "'%s' Enter", ts_shared("models/stories260K/gguf/stories260K-Q4_K_M.gguf"));
    keys(&t, k);
    expect_screen(&t, "Method and budget", OPEN_MS);   /* a chosen model goes on to the Budget */
    keys(&t, "1");
    expect_screen(&t, "stories260K-Q4_K_M.gguf", OPEN_MS);
    expect_screen(&t, "Q4_K", OPEN_MS);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

/* Budget: a preset typed in (its summary expected on the screen). */
static void budget_preset(const tty *t, const char *preset, const char *summary)
{
    char k[128];
    keys(t, "2");
    expect_screen(t, "Method and budget", OPEN_MS);
    keys(t, "Enter");
    expect_screen(t, "Preset:", OPEN_MS);
    snprintf(k, sizeof k, "C-u %s Enter", preset);
    keys(t, k);
    expect_screen(t, summary, OPEN_MS);
}

/* rtn-4 with 16 samples. */
static void budget_rtn(const tty *t)
{
    budget_preset(t, "rtn-4", "round to nearest, 4 bits");
    keys(t, "j j j j j");
    keys(t, "Enter");
    expect_screen(t, "Samples:", OPEN_MS);
    keys(t, "C-u 16 Enter");
}

/* The newest layer of a run still going (started paused, one step): its
   outliers (SpQR) or codebooks (AQLM) show in Inspect before its block is
   checkpointed, and still after the run ends. */
static void inspect_newest(const char *preset, const char *summary, const char *pic_key, const char *missing)
{
    tty t;
    start(&t, 100, 30, "OMP_NUM_THREADS=1");
    open_default(&t);
    budget_preset(&t, preset, summary);
    keys(&t, "S");
    expect_screen(&t, "paused", RUN_MS);
    keys(&t, ".");
    expect_screen(&t, "1/35 layers", STEP_MS);
    keys(&t, "4");
    expect_screen(&t, "block 0 self_attn.q_proj", OPEN_MS);
    keys(&t, pic_key);
    usleep(500 * 1000);
    char *s = screen(&t);
    cr_expect(!strstr(s, missing) && !strstr(s, "loading"), "the newest layer has no data live:\n%s", s);
    free(s);
    keys(&t, "3 p");   /* resume and let it finish */
    expect_screen(&t, "finished:", RUN_MS);
    keys(&t, "4");
    keys(&t, pic_key);
    usleep(500 * 1000);
    s = screen(&t);
    cr_expect(!strstr(s, missing), "no data after the run:\n%s", s);
    free(s);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, inspect_shows_the_newest_spqr_layer_live, .timeout = 120)
{
    inspect_newest("spqr-3.6", "SpQR w3", "o", "no outliers data");
}

Test(tui, inspect_shows_the_newest_aqlm_layer_live, .timeout = 120)
{
    inspect_newest("aqlm-small-2x6", "AQLM 2x6", "b", "no codebook data");
}

Test(tui, quantize_step_cancel_run_and_evaluate, .timeout = 180)
{
    tty t;
    start(&t, 100, 30, "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive");   /* steady on a shared machine */
    open_default(&t);
    budget_rtn(&t);
    keys(&t, "S");
    expect_screen(&t, "paused", RUN_MS);
    expect_screen(&t, "pResume", OPEN_MS);   /* the bar says what p does now */
    sleep(6);
    keys(&t, ".");
    expect_screen(&t, "1/35 layers", STEP_MS);
    char *el = screen(&t), *at = strstr(el, "elapsed ");
    cr_expect(at && at[9] != ':' && at[10] != ':' && atof(at + 8) < 5.0,
              "elapsed counts the 6 s paused:\n%s", el);
    free(el);
    keys(&t, ".");
    expect_screen(&t, "2/35 layers", STEP_MS);
    keys(&t, ".");
    expect_screen(&t, "3/35 layers", STEP_MS);
    char *s = screen(&t);
    cr_expect(strstr(s, "q_proj") && strstr(s, "k_proj") && strstr(s, "v_proj"), "the layer table lacks q/k/v:\n%s", s);
    free(s);
    keys(&t, "c");
    expect_screen(&t, "Cancel the run?", OPEN_MS);
    keys(&t, "y");
    expect_screen(&t, "cancelled", RUN_MS);

    keys(&t, "r");   /* resume: nothing was finished, so it runs every block */
    expect_screen(&t, "finished:", RUN_MS);
    expect_screen(&t, "35/35 layers", OPEN_MS);
    keys(&t, "Enter");
    expect_screen(&t, "block 4 mlp.down_proj", OPEN_MS);
    keys(&t, "x");
    expect_screen(&t, "Export PNG", OPEN_MS);
    keys(&t, "Enter");
    expect_screen(&t, "Picture written", RUN_MS);
    char pngs[300];
    snprintf(pngs, sizeof pngs, "ls %s/quench-runs/*/stories260K-b4-down_proj-weights.png 2>/dev/null", t.dir);
    char *found = slurp(pngs);
    cr_expect(found[0], "the PNG was not written into the run folder");
    free(found);
    keys(&t, "Enter");
    keys(&t, "5");
    expect_screen(&t, "Perplexity", OPEN_MS);
    keys(&t, "p");
    expect_screen(&t, "%)", RUN_MS);   /* the compressed model's change against the original */
    expect_screen(&t, "+/-", OPEN_MS);   /* the results table gives each perplexity's error */
    keys(&t, "g");
    expect_screen(&t, "tokens/s", RUN_MS);
    /* both models, same prompt and seed, side by side: greedy, so the texts start alike */
    expect_screen(&t, "original", OPEN_MS);
    for (int waited = 0; waited < RUN_MS; waited += 100) {
        char *g = screen(&t);
        char *second = strstr(g, "Once upon a time");
        bool both = second && strstr(second + 1, "Once upon a time") && strstr(g, "tokens/s");
        free(g);
        if (both) break;
        usleep(100 * 1000);
    }
    char *gs = screen(&t), *first = strstr(gs, "Once upon a time");
    cr_expect(first && strstr(first + 1, "Once upon a time"), "not two generations side by side:\n%s", gs);
    free(gs);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

/* A click during a run: the screen goes on following the run with no key
   pressed (ncurses used to block in getch after the click's release). */
Test(tui, a_click_does_not_freeze_a_running_run, .timeout = 180)
{
    tty t;
    start(&t, 100, 30, "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive");   /* steady on a shared machine */
    open_default(&t);
    keys(&t, "2");
    expect_screen(&t, "Method and budget", OPEN_MS);
    keys(&t, "s");   /* spqr-3.6 with 128 windows: seconds, not milliseconds */
    expect_screen(&t, "running", RUN_MS);
    usleep(500 * 1000);
    click(&t, 11, 11);
    char *s = screen(&t);
    bool running = strstr(s, "running") != NULL;
    free(s);
    expect_screen(&t, "finished:", 2 * RUN_MS);
    expect_screen(&t, "35/35 layers", OPEN_MS);
    cr_expect(running, "the run ended before the click: the test proved nothing");
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, opens_a_run_folder_from_disk)
{
    tty t;
    start(&t, 100, 30, NULL);
    char run[256];
    snprintf(run, sizeof run, "%s/run", t.dir);
    const char *args[] = { "quantize", TS_STORIES_HF, "--preset", "rtn-4", "--calib",
                           ts_shared("text/tinystories-valid-head.txt"), "--nsamples", "8", "--out", run, NULL };
    ts_run_result r = ts_run_quench(args);
    cr_assert_eq(r.status, 0, "quench quantize failed: %s", r.err);
    ts_run_free(&r);
    open_default(&t);
    keys(&t, "3 o C-u");
    char k[400];
    snprintf(k, sizeof k, "'%s' Enter", run);
    keys(&t, k);
    expect_screen(&t, "35/35 layers", OPEN_MS);
    expect_screen(&t, "finished:", OPEN_MS);
    keys(&t, "4");
    expect_screen(&t, "block 0 self_attn.q_proj", OPEN_MS);
    expect_screen(&t, "of 64x64", OPEN_MS);
    keys(&t, "e");   /* the error map needs the original and the quantized weights */
    usleep(300 * 1000);
    char *s = screen(&t);
    cr_expect(strstr(s, "of 64x64") && !strstr(s, "no error data"), "no error map:\n%s", s);
    free(s);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

/* The Runs screen lists the run folders under runs/, compares two marked ones
   and opens one into Inspect; a run folder chosen on Models opens as the run
   it is (Inspect), and no new run starts. */
Test(tui, runs_browser_compares_and_opens, .timeout = 180)
{
    tty t;
    start(&t, 100, 30, "OMP_NUM_THREADS=1");
    const char *presets[] = { "rtn-4", "gptq-3" };
    char run[2][256];
    for (int i = 0; i < 2; i++) {
        snprintf(run[i], sizeof run[i], "%s/runs/s-%s", t.dir, presets[i]);
        const char *args[] = { "quantize", TS_STORIES_HF, "--preset", presets[i], "--calib",
                               ts_shared("text/tinystories-valid-head.txt"), "--nsamples", "8", "--seqlen", "64",
                               "--out", run[i], NULL };
        ts_run_result r = ts_run_quench(args);
        cr_assert_eq(r.status, 0, "quench quantize failed: %s", r.err);
        ts_run_free(&r);
    }
    open_default(&t);
    keys(&t, "6");
    expect_screen(&t, "s-rtn-4", OPEN_MS);
    expect_screen(&t, "s-gptq-3", OPEN_MS);
    keys(&t, "Space j Space");
    expect_screen(&t, "Compare A and B", OPEN_MS);
    expect_screen(&t, "GPTQ w3", OPEN_MS);
    expect_screen(&t, "RTN w4", OPEN_MS);
    expect_screen(&t, "relative error per layer", OPEN_MS);
    keys(&t, "Enter");
    expect_screen(&t, "block 0 self_attn.q_proj", OPEN_MS);   /* Inspect, on the run chosen */
    /* Models: a run folder typed into the browser opens into Inspect, not the Budget */
    keys(&t, "1 o");
    expect_screen(&t, "Open a model", OPEN_MS);
    keys(&t, ": C-u");
    char k[400];
    snprintf(k, sizeof k, "'%s' Enter", run[0]);
    keys(&t, k);
    expect_screen(&t, "EnterFull", OPEN_MS);   /* Inspect's bottom bar */
    char *s = screen(&t);
    cr_expect(strstr(s, "Layers") && !strstr(s, "Method and budget"), "not on Inspect:\n%s", s);
    free(s);
    cr_expect(!file_exists(t.dir, "quench-runs"), "a new run was started");
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

/* Every line of the screen fits and the frame is whole: top and bottom bars. */
static void expect_layout(const tty *t, int w)
{
    char *s = screen(t);
    cr_expect(strncmp(s, " quench", 7) == 0, "top bar missing at width %d:\n%s", w, s);
    char *last = s + strlen(s);
    while (last > s && last[-1] == '\n') last--;
    while (last > s && last[-1] != '\n') last--;
    cr_expect(strstr(last, "Help") && strstr(last, "Quit"), "bottom bar missing at width %d: '%s'", w, last);
    free(s);
}

Test(tui, resizes_to_80x24_and_back)
{
    tty t;
    start(&t, 120, 40, NULL);
    open_default(&t);
    expect_layout(&t, 120);
    shell("tmux -L %s resize-window -t q -x 80 -y 24", t.sock);
    usleep(300 * 1000);
    expect_screen(&t, "260,032", OPEN_MS);
    expect_layout(&t, 80);
    click(&t, 30, 0);   /* the "3 Run" tab */
    expect_screen(&t, "No run yet", OPEN_MS);
    expect_layout(&t, 80);
    shell("tmux -L %s resize-window -t q -x 132 -y 43", t.sock);
    usleep(300 * 1000);
    expect_screen(&t, "No run yet", OPEN_MS);
    expect_layout(&t, 132);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, a_bad_model_folder_shows_a_dialog)
{
    tty t;
    start(&t, 100, 30, "TERM=screen");   /* 8 colours */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/badmodel", t.dir);
    mkdir(bad, 0755);
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", bad);
    ts_write_file(cfg, "{ \"hidden_size\": ", 17);
    open_default(&t);
    keys(&t, "o");
    expect_screen(&t, "Open a model", OPEN_MS);
    keys(&t, ":");
    keys(&t, "C-u");
    char k[400];
    snprintf(k, sizeof k, "'%s' Enter", bad);
    keys(&t, k);
    expect_screen(&t, "Cannot open the model", OPEN_MS);
    expect_screen(&t, "config.json", OPEN_MS);
    keys(&t, "Enter");
    usleep(200 * 1000);
    char *s = screen(&t);
    cr_expect(!strstr(s, "Cannot open the model") && strstr(s, "260,032"), "the dialog did not close:\n%s", s);
    free(s);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, ctrl_c_asks_during_a_run)
{
    tty t;
    start(&t, 100, 30, NULL);
    open_default(&t);
    budget_rtn(&t);
    keys(&t, "S");
    expect_screen(&t, "paused", RUN_MS);
    keys(&t, "C-c");
    expect_screen(&t, "Quit?", OPEN_MS);
    keys(&t, "n");
    usleep(200 * 1000);
    char *s = screen(&t);
    cr_expect(!strstr(s, "Quit?") && strstr(s, "paused"), "still running after n:\n%s", s);
    free(s);
    keys(&t, "C-c");
    expect_screen(&t, "Quit?", OPEN_MS);
    keys(&t, "y");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, a_crash_signal_restores_the_terminal)
{
    tty t;
    start(&t, 100, 30, NULL);
    open_default(&t);
    char *pid = read_small(t.dir, "pid");
    cr_assert(atoi(pid) > 0, "no pid recorded");
    kill(atoi(pid), SIGSEGV);
    free(pid);
    expect_exit(&t, 128 + SIGSEGV);
    stop(&t);
}

Test(tui, no_color_and_ascii)
{
    tty t;
    start(&t, 100, 30, "NO_COLOR=1 LANG=C LC_ALL=C");
    open_default(&t);
    char *s = screen(&t);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cr_assert(*p < 0x80, "a non-ASCII byte 0x%02x in the C locale at offset %ld:\n%s", *p, (long)(p - (const unsigned char *)s), s);
    cr_expect(strstr(s, "+-"), "no ASCII frame:\n%s", s);
    free(s);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}

Test(tui, a_pre_unicode_terminal_gets_ascii)
{
    tty t;
    start(&t, 100, 30, "TERM=vt100 LANG=C.UTF-8 LC_ALL=C.UTF-8");
    open_default(&t);
    char *s = screen(&t);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cr_assert(*p < 0x80, "a non-ASCII byte 0x%02x on a vt100:\n%s", *p, s);
    free(s);
    keys(&t, "q");
    expect_exit(&t, 0);
    stop(&t);
}
