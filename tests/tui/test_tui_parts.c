/* test_tui_parts.c: the workbench's parts that do not need a terminal: the
   event queue's coalescing (PROGRESS only) and growth, the worker's pause,
   step and cancel, width-aware text, recent.json, and the key table. */
#include <criterion/criterion.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/calib.h"
#include "support.h"
#include "tui/evq.h"
#include "tui/keys.h"
#include "tui/recent.h"
#include "tui/text.h"
#include "tui/worker.h"

static qn_msg progress(int job, const char *stage, int64_t done)
{
    qn_msg m = { .type = QN_MSG_EVENT, .job = job, .kind = QN_EV_PROGRESS, .done = done, .total = 100 };
    snprintf(m.stage, sizeof m.stage, "%s", stage);
    return m;
}

Test(tui_parts, evq_coalesces_progress_only)
{
    qn_evq *q = NULL;
    qn_err err;
    cr_assert_eq(qn_evq_create(&q, &err), QN_OK);
    for (int i = 1; i <= 5; i++) { qn_msg m = progress(1, "gptq", i); qn_evq_push(q, &m); }
    qn_msg w = { .type = QN_MSG_EVENT, .job = 1, .kind = QN_EV_WARNING, .text = strdup("careful"), .text_len = 7 };
    qn_evq_push(q, &w);
    for (int i = 6; i <= 8; i++) { qn_msg m = progress(1, "gptq", i); qn_evq_push(q, &m); }
    qn_msg other = progress(2, "gptq", 1);   /* another job is never merged in */
    qn_evq_push(q, &other);
    qn_msg end = { .type = QN_MSG_EVENT, .job = 1, .kind = QN_EV_RUN_END };
    qn_evq_push(q, &end);
    const struct { int job; qn_event_kind kind; int64_t done; } want[] = {
        { 1, QN_EV_PROGRESS, 5 }, { 1, QN_EV_WARNING, 0 }, { 1, QN_EV_PROGRESS, 8 }, { 2, QN_EV_PROGRESS, 1 },
        { 1, QN_EV_RUN_END, 0 } };
    qn_msg m;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_assert(qn_evq_try_pop(q, &m), "message %zu missing", i);
        cr_expect(m.job == want[i].job && m.kind == want[i].kind && m.done == want[i].done,
                  "message %zu: job %d kind %d done %lld, expected job %d kind %d done %lld", i, m.job, m.kind,
                  (long long)m.done, want[i].job, want[i].kind, (long long)want[i].done);
        if (m.kind == QN_EV_WARNING) cr_expect_str_eq(m.text, "careful");
        qn_msg_done(&m);
    }
    cr_expect(!qn_evq_try_pop(q, &m), "an extra message");
    qn_evq_free(q);
}

Test(tui_parts, evq_keeps_every_layer_done_while_it_grows)
{
    qn_evq *q = NULL;
    qn_err err;
    cr_assert_eq(qn_evq_create(&q, &err), QN_OK);
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        qn_msg p = progress(1, "quantize", i);
        qn_evq_push(q, &p);
        qn_msg m = { .type = QN_MSG_EVENT, .job = 1, .kind = QN_EV_LAYER_DONE, .layer = i,
                     .layer_done = calloc(1, sizeof(qn_ui_layer)) };
        qn_evq_push(q, &m);
    }
    qn_msg m;
    int layers = 0, last = -1;
    while (qn_evq_try_pop(q, &m)) {
        if (m.kind == QN_EV_LAYER_DONE) {
            cr_expect_eq(m.layer, last + 1, "LAYER_DONE %d after %d", m.layer, last);
            last = m.layer;
            layers++;
        }
        qn_msg_done(&m);
    }
    cr_expect_eq(layers, N, "%d of %d LAYER_DONE events arrived", layers, N);
    qn_evq_free(q);
}

/* A job emitting n LAYER_DONE events, stopping when cancelled. */
static qn_status layers_job(void *ctx, qn_event_sink sink, const atomic_bool *cancel, qn_err *err)
{
    int *n = ctx;
    float diag[4] = { 1, 2, 3, 4 }, W_hat[8] = { 0 };
    qn_layer_result res = { .W_hat = W_hat, .relative_error = 0.01, .bits = 4 };
    for (int i = 0; i < *n; i++) {
        if (atomic_load(cancel)) return qn_err_set(err, QN_ERR_CANCELLED, "cancelled");
        qn_calib_layer_event le = { .name = "model.layers.0.self_attn.q_proj", .role = QN_T_WQ, .block = 0,
                                    .result = &res, .hessian_diag = diag, .d_out = 2, .d_in = 4 };
        qn_emit(sink, &(qn_event){ .kind = QN_EV_LAYER_DONE, .stage = "quantize", .layer = i, .payload = &le });
    }
    return QN_OK;
}

/* Pops until a message arrives or about 5 s pass. */
static bool pop_wait(qn_evq *q, qn_msg *m)
{
    for (int i = 0; i < 500; i++) {
        if (qn_evq_try_pop(q, m)) return true;
        usleep(10 * 1000);
    }
    return false;
}

Test(tui_parts, worker_starts_paused_steps_one_layer_and_cancels)
{
    qn_evq *q = NULL;
    qn_err err;
    cr_assert_eq(qn_evq_create(&q, &err), QN_OK);
    int n = 10;
    qn_worker *w = NULL;
    qn_worker_opts o = { .job = 7, .keep_weights_bytes = 1 << 20, .start_paused = true };
    cr_assert_eq(qn_worker_start(&w, &o, layers_job, &n, q, &err), QN_OK);
    qn_msg m;
    cr_assert(pop_wait(q, &m), "the first event did not arrive");   /* emitted, then held */
    cr_expect(m.job == 7 && m.kind == QN_EV_LAYER_DONE && m.layer_done, "first message wrong");
    cr_expect_str_eq(m.layer_done->sublayer, "q_proj");
    cr_expect(m.layer_done->W_hat && m.layer_done->hessian_diag[3] == 4.0f, "payload not copied");
    qn_msg_done(&m);
    usleep(100 * 1000);
    cr_expect(!qn_evq_try_pop(q, &m), "a paused worker went on");
    qn_worker_step(w);
    cr_assert(pop_wait(q, &m), "a step produced nothing");
    cr_expect_eq(m.layer, 1);
    qn_msg_done(&m);
    usleep(100 * 1000);
    cr_expect(!qn_evq_try_pop(q, &m), "a step ran past one layer");
    cr_expect(qn_worker_paused(w));
    qn_worker_cancel(w);
    cr_assert(pop_wait(q, &m));
    cr_expect(m.type == QN_MSG_DONE && m.status == QN_ERR_CANCELLED, "expected a cancelled DONE, got type %d status %d",
              m.type, m.status);
    qn_msg_done(&m);
    qn_worker_free(w);
    qn_evq_free(q);
}

Test(tui_parts, text_widths_fit_and_wrap)
{
    cr_assert(setlocale(LC_ALL, "C.UTF-8"), "no C.UTF-8 locale");
    cr_expect_eq(qn_text_width("abc"), 3);
    cr_expect_eq(qn_text_width("héllo"), 5);
    cr_expect_eq(qn_text_width("日本"), 4);
    bool clipped;
    cr_expect_eq(qn_text_fit("héllo world", 5, true, &clipped), strlen("héll"));
    cr_expect(clipped);
    cr_expect_eq(qn_text_fit("日本語", 5, false, NULL), strlen("日本"));
    size_t next, len = qn_text_wrap("the quick brown fox", 12, &next);
    cr_expect_eq(len, 9, "wrapped at %zu", len);   /* "the quick" */
    cr_expect_eq(next, 10);
    len = qn_text_wrap("ab\ncd", 10, &next);
    cr_expect(len == 2 && next == 3);
    char out[32];
    qn_text_sanitize("a\x01\xff" "b\n", 5, out, sizeof out);
    cr_expect_str_eq(out, "a??b ");
    qn_text_count(260032, out, sizeof out);
    cr_expect_str_eq(out, "260,032");
    qn_text_bytes(1044984, out, sizeof out);
    cr_expect_str_eq(out, "1020 KiB");
    qn_text_copy(out, 4, "héllo");   /* never cuts inside a character */
    cr_expect_str_eq(out, "hé");
    setlocale(LC_ALL, "C");
}

Test(tui_parts, recent_models_round_trip)
{
    char dir[128];
    ts_mkdtemp(dir, sizeof dir);
    setenv("XDG_STATE_HOME", dir, 1);
    qn_recent r = { 0 };
    qn_err err = { 0 };
    cr_assert_eq(qn_recent_load(&r, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(r.n, 0);
    cr_assert_eq(qn_recent_add(&r, "/models/a", &err), QN_OK, "%s", err.msg);
    cr_assert_eq(qn_recent_add(&r, "/models/b", &err), QN_OK);
    cr_assert_eq(qn_recent_add(&r, "/models/a", &err), QN_OK);   /* moves to the front, no duplicate */
    qn_recent back = { 0 };
    cr_assert_eq(qn_recent_load(&back, &err), QN_OK, "%s", err.msg);
    cr_assert_eq(back.n, 2);
    cr_expect_str_eq(back.path[0], "/models/a");
    cr_expect_str_eq(back.path[1], "/models/b");
    cr_assert_eq(qn_recent_remove(&back, 0, &err), QN_OK);
    cr_assert_eq(qn_recent_load(&r, &err), QN_OK);
    cr_expect(r.n == 1 && !strcmp(r.path[0], "/models/b"));
    char bad[256];
    snprintf(bad, sizeof bad, "%s/quench/recent.json", dir);
    ts_write_file(bad, "{", 1);
    cr_expect_neq(qn_recent_load(&r, &err), QN_OK);
    cr_expect(strstr(err.msg, "recent.json"), "the message does not name the file: %s", err.msg);
    unsetenv("XDG_STATE_HOME");
    ts_rmtree(dir);
}

Test(tui_parts, key_table_has_no_conflicts)
{
    size_t n;
    const qn_key_binding *k = qn_keys_table(&n);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++)
            cr_expect(!(k[i].screen == k[j].screen && k[i].key == k[j].key), "key %s bound twice in context %d",
                      k[i].label, k[i].screen);
        /* a row without help is folded into the documented row above it (an alias, or the rest of a group
           such as 1-5), which must be of the same context */
        if (!k[i].help) cr_expect(i > 0 && k[i - 1].screen == k[i].screen, "row %s has no help and no row above", k[i].label);
        if (k[i].bar) cr_expect(k[i].bar_text && k[i].help, "bar entry %s without text", k[i].label);
    }
    cr_expect_eq(qn_keys_action(0, 'q'), QN_ACT_QUIT);
    cr_expect_eq(qn_keys_action(QN_KEYS_DIALOG, 'q'), QN_ACT_NO);
    cr_expect_eq(qn_keys_action(QN_KEYS_DIALOG, 'j'), QN_ACT_NONE, "dialogs take no global keys");
}
