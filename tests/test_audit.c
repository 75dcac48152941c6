/*
 * test_audit.c - events, the recorder, sinks and JSON Lines (suites: unit,
 * audit). Threats: A1 (a flood keeps control-plane decisions and denials),
 * A2 (refusals of bound objects are audited, coalesced), A3 (targets and
 * details are stored escaped).
 */
#include "helpers.h"

#include <pthread.h>
#include <unistd.h>

#include "perm/audit.h"

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

/* ---- A2: refusals of bound objects ------------------------------------- */

/* A context recording 256 events, the fixture library and fx_add_i32. */
struct call_fx {
    struct lib_fx f; /* first: lib_fx_teardown frees the struct */
    capffi_fn *add;
};

static int
call_setup(void **state)
{
    struct call_fx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    lib_fx_open(&c->f, 0, "CAPFFI_FIXTURE_DIR", "CAPFFI_FIXTURE", "calls");
    assert_ok(capffi_audit_record(c->f.ctx, 256));
    c->add = lib_fx_bind(&c->f, "fx_add_i32", "(i32, i32) -> i32", 0);
    *state = c;
    return 0;
}

/* The recorded events of op and status, and the sum of their counts. */
static size_t
events_of(capffi_ctx *ctx, capffi_op op, int status, uint64_t *sum)
{
    size_t n = 0;
    *sum = 0;
    capffi_event ev;
    for (size_t i = 0; capffi_audit_get(&ev, ctx, i) == CAPFFI_OK; i++) {
        if (ev.op != op || ev.status != status)
            continue;
        n++;
        *sum += ev.count;
    }
    return n;
}

static void
audit_revoked_calls_are_audited_and_coalesced(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    int rc;
    assert_int_equal(add_i32(c->add, 2, 3, &rc), 5);
    assert_ok(rc);
    /* A live call writes nothing. */
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_FN_CALL,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL),
                     0);
    assert_ok(capffi_token_revoke(ctx, &c->f.tok));
    for (int i = 0; i < 1000; i++) {
        add_i32(c->add, 1, 1, &rc);
        assert_rc(rc, CAPFFI_EREVOKED);
    }
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "revoked"));
    /* The first refusal is an event at once, the rest are counted. */
    uint64_t sum;
    assert_int_equal(events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_EREVOKED, &sum),
                     1);
    assert_true(sum == 1);
    capffi_event ev;
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    assert_ok(capffi_audit_get(&ev, ctx, n - 1));
    assert_int_equal(ev.op, CAPFFI_OP_FN_CALL);
    assert_int_equal(ev.reason, CAPFFI_REASON_REVOKED);
    assert_non_null(strstr(ev.detail, "token was revoked"));
    assert_string_equal(ev.target, "fx_add_i32"); /* the function's symbol */
    assert_true(ev.token_id == c->f.tok.id);      /* the principal is named */
    /* The flush delivers the other 999 as one event. */
    assert_ok(capffi_audit_flush(ctx));
    assert_int_equal(events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_EREVOKED, &sum),
                     2);
    assert_true(sum == 1000);
    assert_ok(capffi_audit_flush(ctx)); /* nothing more is pending */
    assert_int_equal(events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_EREVOKED, &sum),
                     2);
    assert_rc(capffi_audit_flush(NULL), CAPFFI_EINVAL);
}

static void
audit_closed_calls_go_out_once_a_window(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    capffi__audit_set_window(ctx, 50 * 1000000);
    capffi_lib_close(c->f.lib);
    c->f.lib = NULL;
    int rc;
    for (int i = 0; i < 10; i++) {
        add_i32(c->add, 1, 1, &rc);
        assert_rc(rc, CAPFFI_ECLOSED);
    }
    uint64_t sum;
    assert_int_equal(events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_ECLOSED, &sum),
                     1);
    usleep(60 * 1000);
    /* After the window the next refusal stands for the 9 before it too. */
    add_i32(c->add, 1, 1, &rc);
    assert_rc(rc, CAPFFI_ECLOSED);
    capffi_event ev;
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    assert_ok(capffi_audit_get(&ev, ctx, n - 1));
    assert_int_equal(ev.op, CAPFFI_OP_FN_CALL);
    assert_int_equal(ev.reason, CAPFFI_REASON_CLOSED);
    assert_true(ev.count == 10);
    /* Counted refusals also go out with the first event after the window. */
    add_i32(c->add, 1, 1, &rc);
    add_i32(c->add, 1, 1, &rc);
    usleep(60 * 1000);
    capffi_perm_state st;
    assert_ok(capffi_perm_query(&st, ctx, NULL));
    assert_int_equal(events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_ECLOSED, &sum),
                     3);
    assert_true(sum == 13);
    n = capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    assert_ok(capffi_audit_get(&ev, ctx, n - 1));
    assert_int_equal(ev.op, CAPFFI_OP_PERM_QUERY);
    assert_ok(capffi_audit_get(&ev, ctx, n - 2));
    assert_true(ev.count == 2);
}

struct caller {
    capffi_fn *fn;
    int refused;
};

static void *
call_dead(void *arg)
{
    struct caller *w = arg;
    for (int i = 0; i < 5000; i++) {
        int rc;
        add_i32(w->fn, 1, 2, &rc);
        w->refused += rc == CAPFFI_EREVOKED;
    }
    return NULL;
}

static void
audit_refusals_on_many_threads_are_all_counted(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    assert_ok(capffi_token_revoke(ctx, &c->f.tok));
    pthread_t th[4];
    struct caller w[4];
    for (int i = 0; i < 4; i++) {
        w[i].fn = c->add;
        w[i].refused = 0;
        assert_int_equal(pthread_create(&th[i], NULL, call_dead, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].refused, 5000);
    }
    assert_ok(capffi_audit_flush(ctx));
    uint64_t sum;
    size_t n = events_of(ctx, CAPFFI_OP_FN_CALL, CAPFFI_EREVOKED, &sum);
    assert_true(n >= 1 && n <= 4); /* a second at most: one or two */
    assert_true(sum == 20000);
}

/* A refusal still coalesced reaches the sink when the context is freed. */
static void
count_refusals(void *payload, const capffi_event *ev)
{
    if (ev->op == CAPFFI_OP_FN_CALL)
        *(uint64_t *)payload += ev->count;
}

static void
audit_freeing_the_context_delivers_pending_refusals(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    uint64_t seen = 0;
    assert_ok(capffi_audit_set_sink(ctx, count_refusals, &seen));
    assert_ok(capffi_token_revoke(ctx, &c->f.tok));
    int rc;
    for (int i = 0; i < 7; i++)
        add_i32(c->add, 1, 1, &rc);
    assert_true(seen == 1);
    capffi_ctx_free(ctx);
    c->f.ctx = NULL;
    assert_true(seen == 7);
}

/* ---- A1: what a full recorder keeps ------------------------------------ */

static void
audit_flood_keeps_control_plane_and_denials(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_token t;
    capffi_perm_state st;
    assert_ok(capffi_audit_record(ctx, 8));
    assert_ok(capffi_token_new(&t, ctx, "kept", NULL));
    assert_rc(capffi_token_check(ctx, &t, 1u << 30, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_perm_query(&st, ctx, "/nonexistent/a"), CAPFFI_ENOTFOUND);
    /* A flood of successes: only successes give way. */
    for (int i = 0; i < 1000; i++)
        assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_READ, NULL));
    for (int i = 0; i < 500; i++)
        assert_ok(capffi_perm_query(&st, ctx, "/tmp"));
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW, 0, NULL), 1);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_EINVAL, NULL), 1);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_ENOTFOUND, NULL), 1);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL),
        8);
    /* 1503 events, 8 kept; the drops are counted by op. */
    uint64_t checks = capffi_audit_dropped_op(ctx, CAPFFI_OP_TOKEN_CHECK);
    uint64_t queries = capffi_audit_dropped_op(ctx, CAPFFI_OP_PERM_QUERY);
    assert_true(checks == 1000);
    assert_true(queries == 500 - 5);
    assert_true(capffi_audit_dropped(ctx) == checks + queries);
    assert_true(capffi_audit_dropped_op(ctx, CAPFFI_OP_ANY) ==
                capffi_audit_dropped(ctx));
    assert_true(capffi_audit_dropped_op(ctx, CAPFFI_OP_TOKEN_NEW) == 0);
    assert_true(capffi_audit_dropped_op(ctx, (capffi_op)999) == 0);
    assert_true(capffi_audit_dropped_op(NULL, CAPFFI_OP_ANY) == 0);
    /* The kept events are in seq order. */
    capffi_event ev, prev;
    assert_ok(capffi_audit_get(&prev, ctx, 0));
    assert_int_equal(prev.op, CAPFFI_OP_TOKEN_NEW);
    for (size_t i = 1; i < 8; i++) {
        assert_ok(capffi_audit_get(&ev, ctx, i));
        assert_true(ev.seq > prev.seq);
        prev = ev;
    }
    /* A flood of denials evicts successes and older denials, never the
     * control-plane decisions. */
    for (int i = 0; i < 300; i++)
        assert_rc(capffi_perm_query(&st, ctx, "/nonexistent/b"),
                  CAPFFI_ENOTFOUND);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW, 0, NULL), 1);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_ANY, 0, NULL), 1);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_ENOTFOUND, NULL), 7);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_EINVAL, NULL), 0);
    /* A flood of control-plane decisions evicts denials only down to
     * their reserve, a quarter of the recorder, then older decisions. */
    for (int i = 0; i < 8; i++) {
        capffi_token x;
        assert_ok(capffi_token_new(&x, ctx, "more", NULL));
    }
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_ENOTFOUND, NULL), 2);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW, 0, NULL), 6);
    /* A new denial then takes the place of the oldest denial. */
    uint64_t before = capffi_audit_dropped_op(ctx, CAPFFI_OP_PERM_QUERY);
    assert_rc(capffi_perm_query(&st, ctx, "/nonexistent/c"), CAPFFI_ENOTFOUND);
    assert_true(capffi_audit_dropped_op(ctx, CAPFFI_OP_PERM_QUERY) ==
                before + 1);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_ENOTFOUND, NULL), 2);
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW, 0, NULL), 6);
    /* Attenuations need no permission and only narrow: a flood of them
     * gives way like other successes. */
    for (int i = 0; i < 100; i++) {
        capffi_token x;
        assert_ok(capffi_token_attenuate(&x, ctx, &t, NULL));
        /* So do revoking one's own descendants and naming types. */
        assert_ok(capffi_token_revoke(ctx, &x));
        char name[16];
        snprintf(name, sizeof name, "T%d", i);
        assert_ok(capffi_type_define_tok(ctx, &t, name, "{ i32 }"));
    }
    assert_int_equal(capffi_audit_count(ctx, CAPFFI_OP_TOKEN_NEW, 0, NULL), 6);
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_ENOTFOUND, NULL), 2);
}

static void
audit_jsonl_ends_with_what_was_dropped(void **state)
{
    capffi_ctx *ctx = *state;
    capffi_token t;
    assert_ok(capffi_audit_record(ctx, 2));
    assert_ok(capffi_token_new(&t, ctx, "j", NULL));
    for (int i = 0; i < 5; i++)
        assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_READ, NULL));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    assert_ok(capffi_audit_write_jsonl(ctx, mem));
    fclose(mem);
    const char *last = strstr(text, "}\n{\"summary\"");
    assert_non_null(last);
    assert_string_equal(last + 2, "{\"summary\":\"dropped\",\"dropped\":4,"
                                  "\"by_op\":{\"token.check\":4}}\n");
    assert_non_null(strstr(text, "\"op\":\"token.new\""));
    assert_non_null(strstr(text, "\"count\":1}\n"));
    free(text);
    /* Nothing dropped: no summary. */
    assert_ok(capffi_audit_record(ctx, 8));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_READ, NULL));
    mem = open_memstream(&text, &len);
    assert_ok(capffi_audit_write_jsonl(ctx, mem));
    fclose(mem);
    assert_null(strstr(text, "summary"));
    free(text);
}

/* ---- A3: escaping -------------------------------------------------------- */

struct raw_sink {
    char target[512], detail[1024];
};

static void
keep_strings(void *payload, const capffi_event *ev)
{
    struct raw_sink *s = payload;
    snprintf(s->target, sizeof s->target, "%s", ev->target);
    snprintf(s->detail, sizeof s->detail, "%s", ev->detail);
}

static bool
has_raw_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p <= 0x9f))
            return true;
    return false;
}

static void
audit_targets_are_stored_escaped(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    struct raw_sink s;
    memset(&s, 0, sizeof s);
    assert_ok(capffi_audit_set_sink(ctx, keep_strings, &s));
    /* ESC[2J clears a terminal; U+009B is CSI as one code point; U+202E
     * turns the rest of the line around; \xff is not UTF-8. */
    const char *sym = "fx_\x1b[2J\x07\\caf\xc3\xa9"
                      "\xc2\x9b\xe2\x80\xae\xff\nx";
    const char *want = "fx_\\x1b[2J\\x07\\\\caf\xc3\xa9"
                       "\\xc2\\x9b\\xe2\\x80\\xae\\xff\\nx";
    capffi_fn *fn = NULL;
    int rc = capffi_lib_bind(&fn, c->f.lib, sym, "() -> void", 0);
    assert_true(rc < 0);
    assert_null(fn);
    capffi_event ev;
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    assert_ok(capffi_audit_get(&ev, ctx, n - 1));
    assert_int_equal(ev.op, CAPFFI_OP_LIB_BIND);
    assert_int_equal(ev.status, rc);
    assert_string_equal(ev.target, want);
    assert_string_equal(s.target, want);
    assert_false(has_raw_control(ev.target));
    assert_false(has_raw_control(ev.detail));
    assert_false(has_raw_control(s.detail));
    /* Matching sees the escaped text. */
    assert_int_equal(
        capffi_audit_count(ctx, CAPFFI_OP_LIB_BIND, rc, "fx_?x1b?2J*"), 1);
    /* JSON encodes the stored text once: \x1b is "\\x1b" there. */
    char buf[2048];
    capffi_audit_format_json(buf, sizeof buf, &ev);
    assert_non_null(
        strstr(buf, "\"target\":\"fx_\\\\x1b[2J\\\\x07\\\\\\\\caf"));
    /* Text that needs nothing stays as it was. */
    fn = lib_fx_bind(&c->f, "fx_add_i32", "(i32, i32) -> i32", 0);
    assert_ok(capffi_audit_get(&ev, ctx, n));
    assert_string_equal(ev.target, "fx_add_i32");
    assert_ok(capffi_audit_set_sink(ctx, NULL, NULL));
}

static void
audit_long_targets_are_escaped_whole(void **state)
{
    struct call_fx *c = *state;
    capffi_ctx *ctx = c->f.ctx;
    char sym[1200];
    memset(sym, 0x1b, sizeof sym - 1);
    sym[sizeof sym - 1] = '\0';
    capffi_fn *fn = NULL;
    assert_true(capffi_lib_bind(&fn, c->f.lib, sym, "() -> void", 0) < 0);
    capffi_event ev;
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    assert_ok(capffi_audit_get(&ev, ctx, n - 1));
    assert_int_equal(ev.op, CAPFFI_OP_LIB_BIND);
    assert_int_equal(strlen(ev.target), 4 * (sizeof sym - 1));
    assert_false(has_raw_control(ev.target));
    assert_false(has_raw_control(ev.detail));
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
        T(audit_flood_keeps_control_plane_and_denials),
        T(audit_jsonl_ends_with_what_was_dropped),
#undef T
#define C(name)                                                                \
    cmocka_unit_test_setup_teardown(name, call_setup, lib_fx_teardown)
        C(audit_revoked_calls_are_audited_and_coalesced),
        C(audit_closed_calls_go_out_once_a_window),
        C(audit_refusals_on_many_threads_are_all_counted),
        C(audit_freeing_the_context_delivers_pending_refusals),
        C(audit_targets_are_stored_escaped),
        C(audit_long_targets_are_escaped_whole),
#undef C
    };
    return RUN_TESTS("audit", tests);
}
