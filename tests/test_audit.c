/*
 * test_audit.c - events, the recorder, sinks and JSON Lines (suites: unit,
 * audit).
 */
#include "helpers.h"

#include <unistd.h>

static int
setup(void **state)
{
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(ctx, 256));
    *state = ctx;
    return 0;
}

static int
teardown(void **state)
{
    capffi_ctx_free(*state);
    return 0;
}

static void
audit_every_token_operation_is_recorded(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_token t, c;
    assert_ok(capffi_token_new(&t, ctx, "mod", NULL));
    assert_ok(capffi_token_attenuate(&c, ctx, &t, NULL));
    assert_ok(capffi_token_check(ctx, &c, CAPFFI_RIGHT_READ, NULL));
    assert_ok(capffi_token_revoke(ctx, &t));
    assert_rc(capffi_token_check(ctx, &c, CAPFFI_RIGHT_READ, NULL),
              CAPFFI_EREVOKED);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL),
        5);
    capffi_event ev[5];
    for (size_t i = 0; i < 5; i++)
        assert_ok(capffi_audit_get(&ev[i], ctx, i));
    assert_int_equal(ev[0].op, CAPFFI_OP_TOKEN_NEW);
    assert_true(ev[0].token_id == t.id);
    assert_string_equal(ev[0].label, "mod");
    assert_int_equal(ev[1].op, CAPFFI_OP_TOKEN_ATTENUATE);
    assert_true(ev[1].token_id == c.id);
    assert_true(ev[1].parent_id == t.id);
    assert_string_equal(ev[1].label, "mod+");
    assert_int_equal(ev[2].op, CAPFFI_OP_TOKEN_CHECK);
    assert_int_equal(ev[2].status, 0);
    assert_int_equal(ev[2].rights, CAPFFI_RIGHT_READ);
    assert_int_equal(ev[3].op, CAPFFI_OP_TOKEN_REVOKE);
    assert_non_null(strstr(ev[3].detail, "2 token(s)"));
    assert_int_equal(ev[4].status, CAPFFI_EREVOKED);
    assert_int_equal(ev[4].reason, CAPFFI_REASON_REVOKED);
    for (size_t i = 1; i < 5; i++)
        assert_true(ev[i].seq == ev[i - 1].seq + 1);
    assert_true(ev[0].time_ns > 0);
}

static void
audit_reasons_name_the_refusal(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_token t, x;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    sc.max_uses = 1;
    assert_ok(capffi_token_new(&t, ctx, "r", &sc));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_READ, NULL));
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_READ, NULL),
              CAPFFI_EREVOKED);
    sc.rights = CAPFFI_RIGHT_WRITE;
    sc.max_uses = 0;
    assert_ok(capffi_token_new(&x, ctx, "w", &sc));
    sc.rights = CAPFFI_RIGHT_READ;
    assert_rc(capffi_token_attenuate(&x, ctx, &x, &sc), CAPFFI_EPERM);
    capffi_event ev;
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    int seen_right = 0, seen_out = 0, seen_widen = 0;
    for (size_t i = 0; i < n; i++) {
        assert_ok(capffi_audit_get(&ev, ctx, i));
        seen_right += ev.reason == CAPFFI_REASON_RIGHT;
        seen_out += ev.reason == CAPFFI_REASON_EXHAUSTED;
        seen_widen += ev.reason == CAPFFI_REASON_WIDEN;
    }
    assert_int_equal(seen_right, 1);
    assert_int_equal(seen_out, 1);
    assert_int_equal(seen_widen, 1);
    assert_string_equal(capffi_reason_name(CAPFFI_REASON_EXHAUSTED),
                        "out of uses");
    assert_string_equal(capffi_op_name(CAPFFI_OP_TOKEN_CHECK), "token.check");
    assert_string_equal(capffi_op_name((capffi_op)999), "?");
    assert_string_equal(capffi_reason_name((capffi_reason)999), "?");
}

static void
audit_count_filters(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_perm_state st;
    assert_ok(capffi_perm_query(&st, ctx, "/etc"));
    assert_ok(capffi_perm_query(&st, ctx, "/tmp"));
    assert_rc(capffi_perm_query(&st, ctx, "/nonexistent"), CAPFFI_ENOTFOUND);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_PERM_QUERY, 0, "/e*"),
                     1);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_PERM_QUERY, 0, NULL), 2);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_PERM_QUERY,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL),
                     3);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL),
                     0);
    assert_int_equal(
        capffi_audit_count(NULL, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL),
        0);
}

static void
audit_recorder_keeps_the_newest(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_perm_state st;
    assert_ok(capffi_audit_record(ctx, 3));
    for (int i = 0; i < 5; i++)
        assert_ok(capffi_perm_query(&st, ctx, NULL));
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL),
        3);
    assert_int_equal(capffi_audit_dropped(ctx), 2);
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, ctx, 0));
    assert_true(ev.seq == 3);
    assert_rc(capffi_audit_get(&ev, ctx, 3), CAPFFI_EBOUNDS);
    /* Capacity 0 stops recording. */
    assert_ok(capffi_audit_record(ctx, 0));
    assert_ok(capffi_perm_query(&st, ctx, NULL));
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL),
        0);
    assert_rc(capffi_audit_record(ctx, SIZE_MAX), CAPFFI_EINVAL);
}

struct sink_state {
    int calls;
    capffi_op last_op;
    char last_target[256];
};

static void
sink(void *payload, const capffi_event *ev)
{
    struct sink_state *s = payload;
    s->calls++;
    s->last_op = ev->op;
    snprintf(s->last_target, sizeof s->last_target, "%s", ev->target);
}

static void
audit_sink_receives_events(void **state)
{
    capffi_ctx *ctx = *state;
    struct sink_state s = { 0, CAPFFI_OP_ANY, "" };
    capffi_perm_state st;
    assert_ok(capffi_audit_set_sink(ctx, sink, &s));
    assert_ok(capffi_perm_query(&st, ctx, "/etc"));
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last_op, CAPFFI_OP_PERM_QUERY);
    assert_string_equal(s.last_target, "/etc");
    assert_ok(capffi_audit_set_sink(ctx, NULL, NULL));
    assert_ok(capffi_perm_query(&st, ctx, "/etc"));
    assert_int_equal(s.calls, 1);
    assert_rc(capffi_audit_set_sink(NULL, sink, &s), CAPFFI_EINVAL);
}

static void
audit_json_is_escaped(void **state)
{
    (void)state;
    capffi_event ev;
    memset(&ev, 0, sizeof ev);
    ev.seq = 7;
    ev.op = CAPFFI_OP_LIB_OPEN;
    ev.status = CAPFFI_EPERM;
    ev.reason = CAPFFI_REASON_PATH;
    ev.token_id = 0xabcdef;
    ev.label = "quote\"back\\slash";
    ev.target = "/tmp/\x01\x1b[31m/caf\xc3\xa9/\xff";
    ev.detail = "line\nbreak";
    char buf[1024];
    size_t n = capffi_audit_format_json(buf, sizeof buf, &ev);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "\"seq\":7"));
    assert_non_null(strstr(buf, "\"op\":\"lib.open\""));
    assert_non_null(strstr(buf, "\"status\":\"CAPFFI_EPERM\""));
    assert_non_null(strstr(buf, "\"reason\":\"path not granted\""));
    assert_non_null(strstr(buf, "\"token\":\"0000000000abcdef\""));
    assert_non_null(strstr(buf, "quote\\\"back\\\\slash"));
    assert_non_null(strstr(buf, "/tmp/\\u0001\\u001b[31m/caf\xc3\xa9/\\ufffd"));
    assert_non_null(strstr(buf, "line\\nbreak"));
    for (const char *p = buf; *p; p++)
        assert_true((unsigned char)*p >= 0x20);
    /* Truncation reports the full length and still terminates. */
    char small[16];
    size_t m = capffi_audit_format_json(small, sizeof small, &ev);
    assert_int_equal(m, n);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void
audit_writes_json_lines(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "jsonl", NULL));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_CALLBACK, NULL));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    assert_ok(capffi_audit_write_jsonl(ctx, mem));
    fclose(mem);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    assert_int_equal(lines, 2);
    assert_true(text[0] == '{');
    assert_non_null(strstr(text, "\"op\":\"token.new\""));
    assert_non_null(strstr(text, "}\n{\"seq\":2,"));
    assert_non_null(strstr(text, "\"label\":\"jsonl\""));
    free(text);
    assert_rc(capffi_audit_write_jsonl(ctx, NULL), CAPFFI_EINVAL);
    FILE *ro = fopen("/dev/null", "r");
    assert_non_null(ro);
    assert_rc(capffi_audit_write_jsonl(ctx, ro), CAPFFI_EBUSY);
    fclose(ro);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(audit_every_token_operation_is_recorded),
        T(audit_reasons_name_the_refusal),
        T(audit_count_filters),
        T(audit_recorder_keeps_the_newest),
        T(audit_sink_receives_events),
        T(audit_json_is_escaped),
        T(audit_writes_json_lines),
#undef T
    };
    return RUN_TESTS("audit", tests);
}
