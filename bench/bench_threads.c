/* bench_threads.c: `make bench`, threads part: how quench's commands run when
   the 2-core machine is also busy. Each case (ppl, generate, quantize) runs as
   a child `quench` process at --threads 1 and 2 under several OpenMP waiting
   policies, once with the machine as it is and once next to two busy-looping
   hog processes that this program starts and kills (the machine "as is" may
   be busy too: the two columns are the conditions of this run). Prints the median of 3
   (seconds: wall time, or decode time for generate) and the ratio to the best
   configuration of the same case and load; the default policy (no OMP_*
   variables, what a user gets) should stay within 1.3x of the best. A
   configuration whose first run is over 3x the best so far is not repeated
   (its single time is still a fair ratio), and a run whose wall time passes
   4x the case's shortest is stopped ("over"). $QN_BIN names the binary
   (default ./quench); $QN_BENCH_REPS overrides the 3 repetitions. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared_path.h"

typedef struct {
    const char *label;
    const char *threads;   /* --threads value */
    const char *policy;    /* OMP_WAIT_POLICY, or NULL */
    const char *spin;      /* GOMP_SPINCOUNT, or NULL */
} config;

/* The alternatives to the default (passive, threads.h): libgomp's own spin
   count (300000, close to quench before it chose a policy), a short spin, and
   libgomp spinning without limit. */
static const config k_configs[] = {
    { "t1", "1", NULL, NULL },
    { "t2 active", "2", "active", NULL },
    { "t2 spin 300k", "2", NULL, "300000" },
    { "t2 spin 10k", "2", NULL, "10000" },
    { "t2 default", "2", NULL, NULL },
};
#define N_CONFIGS (sizeof k_configs / sizeof k_configs[0])

typedef struct {
    const char *label;
    const char *argv[24];   /* after the binary; "T" is replaced by the thread count */
    int decode;             /* 1: the time is generate's decode time, from its stderr line */
} bench_case;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Past this many times the best so far a run is stopped: its ratio is then "over". */
#define STOP_RATIO 4.0

/* Runs one case under one configuration; returns seconds, -1 on failure, or
   -2 when its wall time passed limit seconds (0: no limit) and it was stopped.
   *wall_out: the run's wall time. */
static double run_once(const char *bin, const bench_case *c, const config *cfg, double limit, double *wall_out)
{
    char errfile[] = "/tmp/qn_bench_threads_XXXXXX";
    int fd = mkstemp(errfile);
    if (fd < 0) return -1;
    const char *argv[32];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; c->argv[i]; i++) argv[n++] = strcmp(c->argv[i], "T") == 0 ? cfg->threads : c->argv[i];
    argv[n] = NULL;
    fflush(stdout);   /* the child's freopen would write our buffer again */
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("OMP_WAIT_POLICY");
        unsetenv("GOMP_SPINCOUNT");
        if (cfg->policy) setenv("OMP_WAIT_POLICY", cfg->policy, 1);
        if (cfg->spin) setenv("GOMP_SPINCOUNT", cfg->spin, 1);
        dup2(fd, 2);
        if (!freopen("/dev/null", "w", stdout)) _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    pid_t got = 0;
    while (pid > 0 && (got = waitpid(pid, &st, WNOHANG)) == 0) {
        if (limit > 0 && now() - t0 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            close(fd);
            unlink(errfile);
            return -2;
        }
        usleep(2000);
    }
    if (pid < 0 || got < 0) { close(fd); unlink(errfile); return -1; }
    double wall = now() - t0;
    *wall_out = wall;
    double secs = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? wall : -1;
    if (secs > 0 && c->decode) {
        /* "prompt: P tokens in A s; generated N tokens in B s (R tokens/s)" */
        char line[512] = "";
        FILE *fp = fdopen(dup(fd), "r");
        secs = -1;
        if (fp) {
            rewind(fp);
            while (fgets(line, sizeof line, fp)) {
                const char *g = strstr(line, "generated ");
                double b;
                size_t tok;
                if (g && sscanf(g, "generated %zu tokens in %lf s", &tok, &b) == 2) secs = b;
            }
            fclose(fp);
        }
    }
    if (secs < 0) {
        fprintf(stderr, "bench_threads: %s failed under '%s' (stderr kept in %s)\n", c->label, cfg->label, errfile);
        close(fd);
        return -1;
    }
    close(fd);
    unlink(errfile);
    return secs;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Two busy-looping children; they die with this process too. */
static void hogs_start(pid_t pids[2])
{
    fflush(stdout);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            volatile unsigned long x = 0;
            for (;;) x++;
        }
    }
}

static void hogs_stop(pid_t pids[2])
{
    for (int i = 0; i < 2; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
}

int main(void)
{
    const char *bin = getenv("QN_BIN") && *getenv("QN_BIN") ? getenv("QN_BIN") : "./quench";
    int reps = getenv("QN_BENCH_REPS") ? atoi(getenv("QN_BENCH_REPS")) : 3;
    if (reps < 1 || reps > 15) reps = 3;
    const char *ts = shared_path("text/tinystories-valid-head.txt"), *wt = shared_path("text/wikitext2-raw-test.txt");
    const char *smol = shared_path("models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf");
    const bench_case cases[] = {
        { "ppl stories260K ctx256 x20",
          { "ppl", "assets/stories260K", "--text", ts, "--ctx", "256", "--protocol", "llamacpp", "--chunks", "20",
            "--threads", "T", NULL }, 0 },
        { "ppl smollm2 ctx512 x2",
          { "ppl", smol, "--text", wt, "--ctx", "512", "--protocol", "llamacpp", "--chunks", "2", "--threads", "T", NULL }, 0 },
        { "generate stories260K 256", { "generate", "assets/stories260K", "--prompt", "Once upon a time", "-n", "256",
                                        "--temp", "0", "--threads", "T", NULL }, 1 },
        { "generate smollm2 32", { "generate", smol, "--prompt", "The capital of France is", "-n", "32", "--temp", "0",
                                   "--threads", "T", NULL }, 1 },
        { "quantize 260K spqr-3.6 ns16", { "quantize", "assets/stories260K", "--preset", "spqr-3.6", "--calib", ts,
                                           "--nsamples", "16", "--out", "build/bench_threads_q", "--force",
                                           "--threads", "T", NULL }, 0 },
    };
    size_t n_cases = sizeof cases / sizeof cases[0];
    printf("threads: median of %d seconds (decode time for generate); ratio = to the best configuration of the row\n",
           reps);
    printf("%-28s %-6s", "case", "load");
    for (size_t k = 0; k < N_CONFIGS; k++) printf(" %19s", k_configs[k].label);
    printf("\n");
    int rc = 0;
    double worst_default = 0;
    for (int hog = 0; hog < 2; hog++) {
        pid_t pids[2] = { 0, 0 };
        if (hog) hogs_start(pids);
        for (size_t ci = 0; ci < n_cases; ci++) {
            double med[N_CONFIGS], best = 0, best_wall = 0;
            for (size_t k = 0; k < N_CONFIGS; k++) {
                double t[15];
                int n = 0;
                int over = 0;
                for (int r = 0; r < reps; r++) {
                    double wall = 0;
                    t[n] = run_once(bin, &cases[ci], &k_configs[k], STOP_RATIO * best_wall, &wall);
                    if (t[n] >= 0 && (best_wall == 0 || wall < best_wall)) best_wall = wall;
                    if (t[n] == -2) { over = 1; break; }
                    if (t[n] < 0) { rc = 1; break; }
                    n++;
                    if (r == 0 && best > 0 && t[0] > 3 * best) break;
                }
                qsort(t, (size_t)n, sizeof *t, cmp_double);
                med[k] = over ? -2 : n ? t[n / 2] : -1;
                if (med[k] > 0 && (best == 0 || med[k] < best)) best = med[k];
            }
            printf("%-28s %-6s", cases[ci].label, hog ? "2 hogs" : "as is");
            for (size_t k = 0; k < N_CONFIGS; k++) {
                if (med[k] == -2) printf(" %19s", "stopped >4x wall");
                else if (med[k] < 0) printf(" %19s", "failed");
                else printf(" %10.3f (%5.2fx)", med[k], med[k] / best);
            }
            printf("\n");
            fflush(stdout);
            double dm = med[N_CONFIGS - 1], d = dm == -2 ? STOP_RATIO : dm / best;
            if ((dm > 0 || dm == -2) && d > worst_default) worst_default = d;
        }
        if (hog) hogs_stop(pids);
    }
    printf("default policy: at worst %.2fx the best configuration (bar: 1.30x)\n", worst_default);
    return rc;
}
