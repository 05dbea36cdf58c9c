/* test_runlog.c: run.jsonl survives a torn last line and rejects corruption elsewhere. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/runlog.h"
#include "support.h"

Test(runlog, appends_reads_and_tolerates_a_torn_tail)
{
    char dir[128], path[256];
    ts_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/run.jsonl", dir);
    qn_runlog *log = NULL;
    qn_err err = {0};
    cr_assert_eq(qn_runlog_open(&log, path, false, &err), QN_OK, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        json_t *ev = json_pack("{s:s, s:i}", "event", "layer", "i", i);
        cr_assert_eq(qn_runlog_write(log, ev, &err), QN_OK);
        json_decref(ev);
    }
    qn_runlog_close(log);
    cr_assert_eq(qn_runlog_open(&log, path, true, &err), QN_OK);
    json_t *ev = json_pack("{s:s}", "event", "resumed");
    cr_assert_eq(qn_runlog_write(log, ev, &err), QN_OK);
    json_decref(ev);
    qn_runlog_close(log);
    FILE *fp = fopen(path, "ab");
    fputs("{\"event\": \"lay", fp);    /* a crash mid-write */
    fclose(fp);
    json_t *events = NULL;
    cr_assert_eq(qn_runlog_read(path, &events, &err), QN_OK, "%s", err.msg);
    cr_expect_eq(json_array_size(events), 4);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(events, 3), "event")), "resumed");
    json_decref(events);
    ts_write_file(path, "{\"a\":1}\nnot json\n{\"b\":2}\n", 24);
    cr_expect_eq(qn_runlog_read(path, &events, &err), QN_ERR_FORMAT);
    cr_expect(strstr(err.msg, "line 2"), "%s", err.msg);
    ts_rmtree(dir);
}
