/*
 * test_expect.c - reading part of the trail (marks, filters, iteration,
 * reset, stable JSON Lines), call and invocation events, the targets of
 * audit.h's table, and capffi_expect (suites: unit, audit).
 */
#include "helpers.h"

#include <unistd.h>

#include "capffi/testing.h"

static int
setup(void **state)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    lib_fx_open(f, CAPFFI_OPT_ALLOW_ALL, NULL, "CAPFFI_FIXTURE", "host");
    assert_ok(capffi_audit_record(f->ctx, 1024));
    *state = f;
    return 0;
}

/* The fixture's canonical path, as lib.open events name it. */
static void
fixture_canon(char *out)
{
    assert_non_null(realpath(env_path("CAPFFI_FIXTURE"), out));
}

/* capffi_expect, failing the test with the report when it does not match. */
static void
expect_ok(capffi_ctx *ctx, uint64_t mark, unsigned flags,
          const char *const *pats, size_t n)
{
    char report[4096];
    int rc = capffi_expect(ctx, mark, flags, pats, n, report, sizeof report);
    if (rc)
        fail_msg("capffi_expect: %s: %s\n%s", capffi_err_name(rc),
                 capffi_ctx_errmsg(ctx), report);
}

/* capffi_expect must report a mismatch; its report goes to report. */
static void
expect_mismatch(capffi_ctx *ctx, uint64_t mark, unsigned flags,
                const char *const *pats, size_t n, char *report, size_t cap)
{
    int rc = capffi_expect(ctx, mark, flags, pats, n, report, cap);
    if (rc != CAPFFI_ENOTFOUND)
        fail_msg("capffi_expect: %s, expected CAPFFI_ENOTFOUND\n%s",
                 capffi_err_name(rc), report);
}

/* Exactly one event since mark, matching pat. */
static void
expect_one(capffi_ctx *ctx, uint64_t mark, const char *pat)
{
    expect_ok(ctx, mark, CAPFFI_EXPECT_EXACT, &pat, 1);
}

/* No event at all since mark. */
static void
expect_none(capffi_ctx *ctx, uint64_t mark)
{
    expect_ok(ctx, mark, CAPFFI_EXPECT_EXACT, NULL, 0);
}

/* The first event since mark names cb's code, "at 0x...": as its whole
 * detail when whole, else somewhere in it. */
static void
first_names_code(capffi_ctx *ctx, uint64_t mark, capffi_cb *cb, bool whole)
{
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.since = mark;
    capffi_event ev;
    size_t pos = 0;
    assert_ok(capffi_audit_next(&ev, ctx, &flt, &pos));
    char at[64];
    snprintf(at, sizeof at, "at %p", capffi_cb_code(cb));
    if (whole)
        assert_string_equal(ev.detail, at);
    else
        assert_non_null(strstr(ev.detail, at));
}

static void
query(capffi_ctx *ctx, const char *path)
{
    capffi_perm_state st;
    assert_ok(capffi_perm_query(&st, ctx, path));
}

/* ---- marks, filters, iteration, reset ----------------------------------- */

static void
expect_mark_is_the_newest_seq(void **state)
{
    struct lib_fx *f = *state;
    capffi_token a, b;
    assert_int_equal(capffi_audit_mark(NULL), 0);
    assert_ok(capffi_token_new(&a, f->ctx, "a", NULL));
    uint64_t mark = capffi_audit_mark(f->ctx);
    size_t n = capffi_audit_count(f->ctx, CAPFFI_OP_ANY,
                                  CAPFFI_AUDIT_ANY_STATUS, NULL);
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, f->ctx, n - 1));
    assert_true(ev.seq == mark);
    assert_string_equal(ev.label, "a");
    assert_ok(capffi_token_new(&b, f->ctx, "b", NULL));
    assert_ok(capffi_token_new(&b, f->ctx, "c", NULL));

    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.since = mark;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    flt.op = CAPFFI_OP_TOKEN_NEW;
    flt.since = 0;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 3);
    flt.since = mark - 1; /* "a" itself */
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 3);
    flt.since = mark;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    assert_true(capffi_audit_mark(f->ctx) == mark + 2);
}

static void
expect_count_where_matches_every_field(void **state)
{
    struct lib_fx *f = *state;
    capffi_token r = mint(f->ctx, "reader", CAPFFI_RIGHT_READ);
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_token_check(f->ctx, &r, CAPFFI_RIGHT_READ, NULL));
    assert_rc(capffi_token_check(f->ctx, &r, CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(f->ctx, &r, CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    assert_ok(capffi_token_check(f->ctx, &f->tok, CAPFFI_RIGHT_READ, NULL));
    query(f->ctx, "/etc");
    query(f->ctx, "/tmp");

    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.since = mark;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 6);
    assert_int_equal(capffi_audit_count_where(f->ctx, NULL),
                     capffi_audit_count(f->ctx, CAPFFI_OP_ANY,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL));
    flt.op = CAPFFI_OP_TOKEN_CHECK;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 4);
    flt.status = CAPFFI_EPERM;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    flt.status = CAPFFI_OK;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    flt.status = CAPFFI_AUDIT_ANY_STATUS;
    flt.reason = CAPFFI_REASON_RIGHT;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    flt.reason = CAPFFI_REASON_REVOKED;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 0);
    flt.reason = CAPFFI_AUDIT_ANY_REASON;
    flt.label = "reader";
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 3);
    flt.label = "host";
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 1);
    flt.label = "hos"; /* exact, not a prefix */
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 0);
    flt.label = NULL;
    flt.op = CAPFFI_OP_PERM_QUERY;
    flt.target_glob = "/e*";
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 1);
    flt.target_glob = "/*";
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 2);
    flt.target_glob = "/usr";
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 0);
    assert_int_equal(capffi_audit_count_where(NULL, &flt), 0);
}

static void
expect_next_iterates_in_order_then_ends(void **state)
{
    struct lib_fx *f = *state;
    const char *labels[] = { "one", "two", "three" };
    uint64_t mark = capffi_audit_mark(f->ctx);
    for (size_t i = 0; i < 3; i++) {
        (void)mint(f->ctx, labels[i], 0);
        query(f->ctx, "/tmp"); /* between them, filtered out */
    }
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.op = CAPFFI_OP_TOKEN_NEW;
    flt.since = mark;
    capffi_event ev;
    size_t pos = 0, k = 0;
    uint64_t last = mark;
    int rc;
    while ((rc = capffi_audit_next(&ev, f->ctx, &flt, &pos)) == CAPFFI_OK) {
        assert_true(k < 3);
        assert_int_equal(ev.op, CAPFFI_OP_TOKEN_NEW);
        assert_string_equal(ev.label, labels[k]);
        assert_true(ev.seq > last);
        last = ev.seq;
        k++;
    }
    assert_int_equal(rc, CAPFFI_EBOUNDS);
    assert_int_equal(k, 3);
    /* At the end, the event is zeroed and it stays the end. */
    assert_true(ev.seq == 0);
    assert_null(ev.label);
    assert_rc(capffi_audit_next(&ev, f->ctx, &flt, &pos), CAPFFI_EBOUNDS);
    /* NULL filter: every event, from the oldest. */
    pos = 0;
    assert_ok(capffi_audit_next(&ev, f->ctx, NULL, &pos));
    assert_int_equal(ev.op, CAPFFI_OP_TOKEN_NEW);
    assert_string_equal(ev.label, "one"); /* setup came before the recorder */
    assert_int_equal(pos, 1);
    assert_rc(capffi_audit_next(NULL, f->ctx, NULL, &pos), CAPFFI_EINVAL);
    assert_rc(capffi_audit_next(&ev, NULL, NULL, &pos), CAPFFI_EINVAL);
    assert_rc(capffi_audit_next(&ev, f->ctx, NULL, NULL), CAPFFI_EINVAL);
}

static void
expect_reset_empties_and_keeps_the_sequence(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 3));
    for (int i = 0; i < 5; i++)
        query(f->ctx, "/tmp");
    assert_int_equal(capffi_audit_dropped(f->ctx), 2);
    assert_int_equal(capffi_audit_dropped_op(f->ctx, CAPFFI_OP_PERM_QUERY), 2);
    uint64_t mark = capffi_audit_mark(f->ctx);

    assert_ok(capffi_audit_reset(f->ctx));
    assert_int_equal(capffi_audit_count(f->ctx, CAPFFI_OP_ANY,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL),
                     0);
    assert_int_equal(capffi_audit_dropped(f->ctx), 0);
    assert_int_equal(capffi_audit_dropped_op(f->ctx, CAPFFI_OP_PERM_QUERY), 0);
    capffi_event ev;
    assert_rc(capffi_audit_get(&ev, f->ctx, 0), CAPFFI_EBOUNDS);
    assert_true(capffi_audit_mark(f->ctx) == mark);

    /* The sequence goes on; the capacity is kept. */
    query(f->ctx, "/etc");
    assert_ok(capffi_audit_get(&ev, f->ctx, 0));
    assert_true(ev.seq == mark + 1);
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.since = mark;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 1);
    expect_one(f->ctx, mark, "perm.query ok /etc");
    for (int i = 0; i < 3; i++)
        query(f->ctx, "/tmp");
    assert_int_equal(capffi_audit_count(f->ctx, CAPFFI_OP_ANY,
                                        CAPFFI_AUDIT_ANY_STATUS, NULL),
                     3);
    assert_int_equal(capffi_audit_dropped(f->ctx), 1);
    assert_rc(capffi_audit_reset(NULL), CAPFFI_EINVAL);
}

/* ---- stable JSON Lines -------------------------------------------------- */

/* The stream's text, NUL-terminated: the caller frees it. */
static char *
jsonl(capffi_ctx *ctx, const capffi_audit_filter *flt, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    int rc = capffi_audit_write_jsonl_where(ctx, m, flt, flags);
    assert_int_equal(fclose(m), 0);
    if (rc) {
        free(text);
        fail_msg("capffi_audit_write_jsonl_where: %s", capffi_err_name(rc));
    }
    return text;
}

static void
add_one(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    ret->i64 = args[0].i64 + 1;
}

/*
 * Two tokens, a library opened through the second, a symbol bound, one
 * missing, the first's address taken and made a function twice, and a
 * callback whose code is made a function.
 */
static capffi_ctx *
stable_scenario(void)
{
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_audit_record(ctx, 64));
    capffi_token host, plugin;
    assert_ok(capffi_token_new(&host, ctx, "host", NULL));
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_DLOPEN;
    sc.label = "plugin";
    assert_ok(capffi_token_attenuate(&plugin, ctx, &host, &sc));
    capffi_lib *lib;
    assert_ok(
        capffi_lib_open(&lib, ctx, &plugin, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *add = bind_sym(lib, "fx_add_i32", "(i32, i32) -> i32");
    capffi_fn *none = NULL;
    assert_rc(capffi_lib_bind(&none, lib, "fx_no_such_symbol", "() -> void", 0),
              CAPFFI_ENOTFOUND);
    void *code = NULL;
    assert_ok(capffi_lib_symbol(&code, lib, "fx_add_i32"));
    capffi_fn *p1, *p2, *p3;
    assert_ok(
        capffi_fn_from_ptr(&p1, ctx, &host, code, "(i32, i32) -> i32", 0));
    assert_ok(
        capffi_fn_from_ptr(&p2, ctx, &host, code, "(i32, i32) -> i32", 0));
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, ctx, &host, "(i32) -> i32", add_one, NULL, 0));
    assert_ok(capffi_fn_from_ptr(&p3, ctx, &host, capffi_cb_code(cb),
                                 "(i32) -> i32", 0));
    capffi_fn_free(p1);
    capffi_fn_free(p2);
    capffi_fn_free(p3);
    capffi_cb_close(cb);
    capffi_fn_free(add);
    capffi_lib_close(lib);
    return ctx;
}

/* text with every "{LIB}" replaced by lib and "{W}" by w: freed by the
 * caller. */
static char *
fill(const char *text, const char *lib, const char *w)
{
    size_t cap = strlen(text) + 16 * (strlen(lib) + strlen(w)) + 1, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *s = text; *s;) {
        const char *put = NULL;
        if (strncmp(s, "{LIB}", 5) == 0)
            put = lib, s += 5;
        else if (strncmp(s, "{W}", 3) == 0)
            put = w, s += 3;
        if (put) {
            size_t k = strlen(put);
            assert_true(n + k < cap);
            memcpy(out + n, put, k);
            n += k;
        } else {
            assert_true(n + 1 < cap);
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return out;
}

static const char golden[] =
    "{\"seq\":1,\"op\":\"token.new\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "127,\"target\":\"\",\"detail\":\"dlopen,dlopen_global,callback,pointer,"
    "read,write,fnptr\",\"count\":1}\n"
    "{\"seq\":2,\"op\":\"token.attenuate\",\"status\":\"CAPFFI_OK\","
    "\"reason\":\"none\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":"
    "\"plugin\",\"rights\":1,\"target\":\"\",\"detail\":\"dlopen\","
    "\"count\":1}\n"
    "{\"seq\":3,\"op\":\"lib.open\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":\"plugin\","
    "\"rights\":1,\"target\":\"{LIB}\",\"detail\":\"loaded{W}\",\"count\":1}\n"
    "{\"seq\":4,\"op\":\"lib.bind\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":\"plugin\","
    "\"rights\":0,\"target\":\"fx_add_i32\",\"detail\":\"{LIB}\",\"count\":1}\n"
    "{\"seq\":5,\"op\":\"lib.bind\",\"status\":\"CAPFFI_ENOTFOUND\","
    "\"reason\":\"failed\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":"
    "\"plugin\",\"rights\":0,\"target\":\"fx_no_such_symbol\",\"detail\":"
    "\"symbol 'fx_no_such_symbol' not found in '{LIB}'\",\"count\":1}\n"
    "{\"seq\":6,\"op\":\"lib.bind\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":\"plugin\","
    "\"rights\":0,\"target\":\"fx_add_i32\",\"detail\":\"address: {LIB}\","
    "\"count\":1}\n"
    "{\"seq\":7,\"op\":\"fn.from_ptr\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "64,\"target\":\"@1\",\"detail\":\"(i32, i32) -> i32\",\"count\":1}\n"
    "{\"seq\":8,\"op\":\"fn.from_ptr\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "64,\"target\":\"@1\",\"detail\":\"(i32, i32) -> i32\",\"count\":1}\n"
    "{\"seq\":9,\"op\":\"cb.new\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "4,\"target\":\"(i32) -> i32\",\"detail\":\"at @2\",\"count\":1}\n"
    "{\"seq\":10,\"op\":\"fn.from_ptr\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "64,\"target\":\"@2\",\"detail\":\"(i32) -> i32\",\"count\":1}\n"
    "{\"seq\":11,\"op\":\"cb.close\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t1\",\"parent\":\"\",\"label\":\"host\",\"rights\":"
    "4,\"target\":\"(i32) -> i32\",\"detail\":\"closed\",\"count\":1}\n"
    "{\"seq\":12,\"op\":\"lib.close\",\"status\":\"CAPFFI_OK\",\"reason\":"
    "\"none\",\"token\":\"t2\",\"parent\":\"t1\",\"label\":\"plugin\","
    "\"rights\":0,\"target\":\"{LIB}\",\"detail\":\"closed\",\"count\":1}\n";

static void
expect_jsonl_stable_is_golden(void **state)
{
    (void)state;
    capffi_ctx *ctx = stable_scenario();
    char canon[PATH_MAX];
    fixture_canon(canon);
    /* lib.open notes a library file this process could replace. */
    const char *w = access(canon, W_OK) == 0
                        ? "; the file is writable by this process (it could "
                          "be replaced under the grant)"
                        : "";
    char *want = fill(golden, canon, w);
    char *got = jsonl(ctx, NULL, CAPFFI_JSONL_STABLE);
    assert_string_equal(got, want);
    assert_null(strstr(got, "time_ns"));
    assert_null(strstr(got, "\"0x"));
    free(want);
    free(got);
    capffi_ctx_free(ctx);
}

static void
expect_jsonl_where_filters_and_checks_flags(void **state)
{
    (void)state;
    capffi_ctx *ctx = stable_scenario();
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.op = CAPFFI_OP_FN_FROM_PTR;
    char *got = jsonl(ctx, &flt, CAPFFI_JSONL_STABLE);
    /* Renumbered from 1, names given in the order of this output. */
    const char *line1 = "{\"seq\":1,\"op\":\"fn.from_ptr\",\"status\":"
                        "\"CAPFFI_OK\",\"reason\":\"none\",\"token\":\"t1\","
                        "\"parent\":\"\",\"label\":\"host\",\"rights\":64,"
                        "\"target\":\"@1\",";
    assert_memory_equal(got, line1, strlen(line1));
    size_t lines = 0;
    for (const char *s = got; (s = strchr(s, '\n')); s++)
        lines++;
    assert_int_equal(lines, 3);
    assert_non_null(strstr(got, "\"seq\":3,"));
    assert_non_null(strstr(got, "\"target\":\"@2\""));
    assert_null(strstr(got, "\"seq\":4,"));
    assert_null(strstr(got, "token.new"));
    free(got);

    /* Without the flag: real ids, times and addresses. */
    got = jsonl(ctx, &flt, 0);
    assert_non_null(strstr(got, "\"time_ns\":"));
    assert_non_null(strstr(got, "\"target\":\"0x"));
    assert_null(strstr(got, "\"t1\""));
    free(got);

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_non_null(m);
    assert_rc(capffi_audit_write_jsonl_where(ctx, m, NULL, 0x2u),
              CAPFFI_EINVAL);
    assert_rc(capffi_audit_write_jsonl_where(ctx, m, NULL,
                                             CAPFFI_JSONL_STABLE | 0x80u),
              CAPFFI_EINVAL);
    assert_rc(capffi_audit_write_jsonl_where(NULL, m, NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_audit_write_jsonl_where(ctx, NULL, NULL, 0),
              CAPFFI_EINVAL);
    assert_int_equal(fclose(m), 0);
    assert_int_equal(len, 0);
    free(text);
    capffi_ctx_free(ctx);
}

/* ---- call and invocation events ----------------------------------------- */

static capffi_value
i_(int64_t v)
{
    capffi_value x;
    memset(&x, 0, sizeof x);
    x.i64 = v;
    return x;
}

/* Holds are counted per bit and add to the host's setting; a release
 * takes back one hold, never the host's setting, and a bit not held is
 * refused without changing anything. */
static void
expect_calls_holds_layer_on_the_host(void **state)
{
    struct lib_fx *f = *state;
    const unsigned fn = CAPFFI_AUDIT_FN_CALLS, cb = CAPFFI_AUDIT_CB_INVOKES;
    assert_int_equal(capffi_audit_calls_get(f->ctx), 0);
    assert_ok(capffi_audit_calls_hold(f->ctx, fn));
    assert_ok(capffi_audit_calls_hold(f->ctx, fn | cb));
    assert_int_equal(capffi_audit_calls_get(f->ctx), fn | cb);
    assert_ok(capffi_audit_calls(f->ctx, 0)); /* the host's, not the holds */
    assert_int_equal(capffi_audit_calls_get(f->ctx), fn | cb);
    assert_ok(capffi_audit_calls_release(f->ctx, fn | cb));
    assert_int_equal(capffi_audit_calls_get(f->ctx), fn);
    assert_ok(capffi_audit_calls(f->ctx, cb));
    assert_ok(capffi_audit_calls_release(f->ctx, fn));
    assert_int_equal(capffi_audit_calls_get(f->ctx), cb);
    /* Nothing held: refused, and nothing changes. */
    assert_rc(capffi_audit_calls_release(f->ctx, cb), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "not held"));
    assert_int_equal(capffi_audit_calls_get(f->ctx), cb);
    assert_rc(capffi_audit_calls_hold(f->ctx, 0x8), CAPFFI_EINVAL);
    assert_rc(capffi_audit_calls_hold(NULL, fn), CAPFFI_EINVAL);
    assert_int_equal(capffi_audit_calls_get(NULL), 0);
    assert_ok(capffi_audit_calls(f->ctx, 0));
    assert_int_equal(capffi_audit_calls_get(f->ctx), 0);
}

static void
expect_calls_write_one_event_per_call(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *before = lib_fx_bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    int rc;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_int_equal(add_i32(before, 1, 2, &rc), 3);
    assert_ok(rc);
    /* Off: no fn.call event. */
    expect_none(f->ctx, mark);
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.op = CAPFFI_OP_FN_CALL;
    flt.since = mark;
    assert_int_equal(capffi_audit_count_where(f->ctx, &flt), 0);

    assert_rc(capffi_audit_calls(f->ctx, 0x4u), CAPFFI_EINVAL);
    assert_rc(capffi_audit_calls(NULL, CAPFFI_AUDIT_FN_CALLS), CAPFFI_EINVAL);
    assert_ok(capffi_audit_calls(f->ctx, CAPFFI_AUDIT_FN_CALLS));
    capffi_fn *after = lib_fx_bind(f, "fx_id_i8", "(i8) -> i8", 0);
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(add_i32(before, 2, 3, &rc), 5);
    assert_ok(rc);
    assert_int_equal(add_i32(before, 4, 5, &rc), 9);
    capffi_value a = i_(-5), r;
    assert_ok(capffi_fn_call(after, &a, &r));
    a = i_(300); /* out of range for an i8: stopped before the call */
    assert_rc(capffi_fn_call(after, &a, &r), CAPFFI_ERANGE);
    const char *want[] = {
        "fn.call ok fx_add_i32",
        "fn.call ok fx_add_i32",
        "fn.call ok fx_id_i8",
        "fn.call ERANGE fx_id_i8",
    };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT, want,
              4);
    capffi_event ev;
    size_t pos = 0;
    flt.since = mark;
    flt.status = CAPFFI_ERANGE;
    assert_ok(capffi_audit_next(&ev, f->ctx, &flt, &pos));
    assert_non_null(strstr(ev.detail, "argument 1"));
    assert_string_equal(ev.label, "host");

    /* The raw call path too. */
    mark = capffi_audit_mark(f->ctx);
    int32_t x = 20, y = 22;
    void *args[2] = { &x, &y };
    uint64_t ret = 0;
    assert_ok(capffi_fn_call_raw(before, args, &ret));
    assert_int_equal((int32_t)ret, 42);
    expect_one(f->ctx, mark, "fn.call ok fx_add_i32");

    /* Off again: nothing. */
    assert_ok(capffi_audit_calls(f->ctx, 0));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(add_i32(before, 1, 1, &rc), 2);
    assert_ok(capffi_fn_call_raw(before, args, &ret));
    a = i_(300);
    assert_rc(capffi_fn_call(after, &a, &r), CAPFFI_ERANGE);
    expect_none(f->ctx, mark);
    capffi_fn_free(before);
    capffi_fn_free(after);
}

static void
expect_fn_audit_is_per_function(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *add = lib_fx_bind(f, "fx_add_i32", "(i32, i32) -> i32", 0);
    capffi_fn *id = lib_fx_bind(f, "fx_id_i32", "(i32) -> i32", 0);
    assert_ok(capffi_fn_audit(add, true));
    assert_rc(capffi_fn_audit(NULL, true), CAPFFI_EINVAL);
    uint64_t mark = capffi_audit_mark(f->ctx);
    int rc;
    assert_int_equal(add_i32(add, 1, 2, &rc), 3);
    capffi_value a = i_(7), r;
    assert_ok(capffi_fn_call(id, &a, &r));
    const char *want[] = { "fn.call ok fx_add_i32" };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, want, 1);

    /* Its own switch or the context's: turning the context's off leaves
     * the function's on. */
    assert_ok(capffi_audit_calls(f->ctx, CAPFFI_AUDIT_FN_CALLS));
    assert_ok(capffi_audit_calls(f->ctx, 0));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(add_i32(add, 1, 2, &rc), 3);
    assert_ok(capffi_fn_call(id, &a, &r));
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, want, 1);

    assert_ok(capffi_fn_audit(add, false));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(add_i32(add, 1, 2, &rc), 3);
    expect_none(f->ctx, mark);
    capffi_fn_free(add);
    capffi_fn_free(id);
}

static void
expect_fn_from_ptr_calls_name_the_address(void **state)
{
    struct lib_fx *f = *state;
    void *code = NULL;
    assert_ok(capffi_lib_symbol(&code, f->lib, "fx_add_i32"));
    capffi_fn *fn = NULL;
    assert_ok(
        capffi_fn_from_ptr(&fn, f->ctx, &f->tok, code, "(i32, i32) -> i32", 0));
    assert_ok(capffi_fn_audit(fn, true));
    uint64_t mark = capffi_audit_mark(f->ctx);
    int rc;
    assert_int_equal(add_i32(fn, 40, 2, &rc), 42);
    char pat[64];
    snprintf(pat, sizeof pat, "fn.call ok %p", code);
    const char *want[] = { pat };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, want, 1);
    capffi_fn_free(fn);
}

static void
expect_jobs_are_audited(void **state)
{
    struct lib_fx *f = *state;
    capffi_ctx *ctx = ctx_for_fixtures(0, 1);
    assert_ok(capffi_audit_record(ctx, 256));
    capffi_token t = mint(ctx, "jobs", 0);
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, ctx, &t, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *add = bind_sym(lib, "fx_add_i32", "(i32, i32) -> i32");
    capffi_fn *i8 = bind_sym(lib, "fx_id_i8", "(i8) -> i8");
    (void)f;
    assert_ok(capffi_audit_calls(ctx, CAPFFI_AUDIT_FN_CALLS));
    uint64_t mark = capffi_audit_mark(ctx);
    capffi_value args[2] = { i_(30), i_(12) }, r;
    capffi_job *job = NULL;
    assert_ok(capffi_fn_call_async(&job, add, args));
    assert_ok(capffi_job_wait(&r, job, 10000));
    assert_int_equal(r.i64, 42);
    capffi_job_free(job);
    expect_one(ctx, mark, "fn.call ok fx_add_i32");

    /* A refused submission names the symbol (audit.h's table), and makes
     * no call. */
    mark = capffi_audit_mark(ctx);
    args[0] = i_(1000);
    assert_rc(capffi_fn_call_async(&job, i8, args), CAPFFI_ERANGE);
    assert_null(job);
    expect_one(ctx, mark, "job.submit ERANGE fx_id_i8");
    capffi_fn_free(add);
    capffi_fn_free(i8);
    capffi_ctx_free(ctx);
}

struct inc {
    int calls;
    int fail_at; /* fail this call (1-based); 0: never */
};

static void
inc_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct inc *c = payload;
    c->calls++;
    if (c->calls == c->fail_at) {
        capffi_cb_fail("refused by the handler");
        return;
    }
    ret->i64 = args[0].i64 + 1;
}

/* fx_apply_i32(cb, x): native code invoking the callback once. */
static int32_t
apply(capffi_fn *fn, capffi_cb *cb, int32_t x)
{
    capffi_value a[2], r;
    memset(a, 0, sizeof a);
    a[0].cb = cb;
    a[1].i64 = x;
    r.i64 = -1;
    assert_ok(capffi_fn_call(fn, a, &r));
    return (int32_t)r.i64;
}

static void
expect_invocations_write_one_event_each(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *ap = lib_fx_bind(f, "fx_apply_i32", "(function, i32) -> i32", 0);
    capffi_fn *twice =
        lib_fx_bind(f, "fx_call_twice", "(function, i32) -> i32", 0);
    struct inc c = { 0, 0 };
    capffi_cb *cb = NULL;
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "(i32) -> i32", inc_handler,
                            &c, 0));
    /* Off: an invocation writes nothing. */
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(ap, cb, 1), 2);
    expect_none(f->ctx, mark);

    assert_ok(capffi_audit_calls(f->ctx, CAPFFI_AUDIT_CB_INVOKES));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(twice, cb, 1), 3);
    const char *two[] = { "cb.invoke ok (i32) -> i32",
                          "cb.invoke ok (i32) -> i32" };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, two, 2);
    first_names_code(f->ctx, mark, cb, true);

    /* Callbacks made after it is on are audited too. */
    capffi_cb *late = NULL;
    struct inc c2 = { 0, 0 };
    assert_ok(capffi_cb_new(&late, f->ctx, &f->tok, "(i32)->i32", inc_handler,
                            &c2, 0));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(ap, late, 5), 6);
    expect_one(f->ctx, mark, "cb.invoke ok (i32)->i32");

    assert_ok(capffi_audit_calls(f->ctx, 0));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(twice, cb, 1), 3);
    expect_none(f->ctx, mark);

    /* One callback's own switch. */
    assert_ok(capffi_cb_audit(cb, true));
    assert_rc(capffi_cb_audit(NULL, true), CAPFFI_EINVAL);
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(ap, cb, 1), 2);
    assert_int_equal(apply(ap, late, 1), 2);
    expect_one(f->ctx, mark, "cb.invoke ok (i32) -> i32");
    assert_ok(capffi_cb_audit(cb, false));
    mark = capffi_audit_mark(f->ctx);
    assert_int_equal(apply(ap, cb, 1), 2);
    expect_none(f->ctx, mark);
    capffi_cb_close(cb);
    capffi_cb_close(late);
    capffi_fn_free(ap);
    capffi_fn_free(twice);
}

static void
expect_failed_invocation_is_a_refusal_not_a_success(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *ap = lib_fx_bind(f, "fx_apply_i32", "(function, i32) -> i32", 0);
    struct inc c = { 0, 1 };
    capffi_cb *cb = NULL;
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "(i32) -> i32", inc_handler,
                            &c, 0));
    assert_ok(capffi_cb_audit(cb, true));
    uint64_t mark = capffi_audit_mark(f->ctx);
    apply(ap, cb, 1); /* the native caller gets the default result */
    assert_int_equal(c.calls, 1);
    expect_one(f->ctx, mark, "cb.invoke ECALLBACK (i32) -> i32");
    capffi_cb_close(cb);
    capffi_fn_free(ap);
}

/* ---- capffi_expect ------------------------------------------------------ */

/* Events since the returned mark: lib.open, then lib.bind fx_add_i32. */
static uint64_t
open_and_bind(struct lib_fx *f, capffi_lib **lib, capffi_fn **fn)
{
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(
        capffi_lib_open(lib, f->ctx, &f->tok, env_path("CAPFFI_FIXTURE"), 0));
    *fn = bind_sym(*lib, "fx_add_i32", "(i32, i32) -> i32");
    return mark;
}

static void
expect_orders_and_matches(void **state)
{
    struct lib_fx *f = *state;
    capffi_lib *lib;
    capffi_fn *fn;
    uint64_t mark = open_and_bind(f, &lib, &fn);
    char canon[PATH_MAX], open_pat[PATH_MAX + 16];
    fixture_canon(canon);
    snprintf(open_pat, sizeof open_pat, "lib.open ok %s", canon);
    const char *in_order[] = { open_pat, "lib.bind ok fx_add_i32" };
    const char *reversed[] = { "lib.bind ok fx_add_i32", open_pat };
    char report[2048];
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
              in_order, 2);
    expect_ok(f->ctx, mark, 0, reversed, 2);
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, reversed, 2);
    expect_mismatch(f->ctx, mark, CAPFFI_EXPECT_ORDERED, reversed, 2, report,
                    sizeof report);
    assert_non_null(strstr(report, "1 of 2 patterns matched"));
    assert_non_null(strstr(report, "; ordered)"));

    /* Greedy first fit would give "lib.* ok *" the lib.open and leave the
     * second pattern nothing; a matching gives it the lib.bind. */
    const char *greedy[] = { "lib.* ok *", "lib.open ok *" };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, greedy, 2);
    const char *star[] = { "* ok *", "lib.open ok *" };
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, star, 2);
    /* Distinct events: two patterns cannot share the one lib.open. */
    const char *twice[] = { "lib.open ok *", "lib.open *" };
    expect_mismatch(f->ctx, mark, 0, twice, 2, report, sizeof report);
    assert_non_null(strstr(report, "- [2] lib.open *"));

    /* Exact: an event no pattern took is reported with '+'. */
    const char *only_open[] = { "lib.open"
                                " ok" };
    expect_ok(f->ctx, mark, 0, only_open, 1);
    expect_mismatch(f->ctx, mark, CAPFFI_EXPECT_EXACT, only_open, 1, report,
                    sizeof report);
    assert_non_null(strstr(report, "1 event unexpected"));
    assert_non_null(strstr(report, "  + "));
    assert_non_null(strstr(report, " lib.bind ok fx_add_i32\n"));
    assert_non_null(strstr(report, " lib.open ok "));
    assert_non_null(strstr(report, "   [1]\n"));

    /* A pattern nothing matched: "- [N] pattern". */
    const char *missing[] = { "lib.open ok", "lib.bind ok fx_sub_i32" };
    expect_mismatch(f->ctx, mark, 0, missing, 2, report, sizeof report);
    assert_non_null(strstr(report, "  - [2] lib.bind ok fx_sub_i32\n"));
    assert_null(strstr(report, "- [1]"));
    capffi_fn_free(fn);
    capffi_lib_close(lib);
}

static void
expect_status_words(void **state)
{
    struct lib_fx *f = *state;
    capffi_token r = mint(f->ctx, "reader", CAPFFI_RIGHT_READ);
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_token_check(f->ctx, &r, CAPFFI_RIGHT_WRITE, NULL),
              CAPFFI_EPERM);
    char report[1024];
    const char *match[] = { "token.check fail", "token.check *",
                            "token.check EPERM", "token.check CAPFFI_EPERM",
                            "token.* EPERM *" };
    for (size_t i = 0; i < 5; i++)
        expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, &match[i], 1);
    const char *nomatch[] = { "token.check ok", "token.check OK",
                              "token.check EREVOKED", "token.check CAPFFI_OK",
                              "token.check EPERM /x" };
    for (size_t i = 0; i < 5; i++)
        expect_mismatch(f->ctx, mark, 0, &nomatch[i], 1, report, sizeof report);

    mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_token_check(f->ctx, &r, CAPFFI_RIGHT_READ, NULL));
    const char *ok[] = { "token.check ok", "token.check OK",
                         "token.check CAPFFI_OK", "token.check *" };
    for (size_t i = 0; i < 4; i++)
        expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, &ok[i], 1);
    const char *fail[] = { "token.check fail" };
    expect_mismatch(f->ctx, mark, 0, fail, 1, report, sizeof report);
}

/* capffi_expect must refuse the one pattern as malformed, naming it and
 * the byte. */
static void
malformed(capffi_ctx *ctx, const char *pat, size_t byte)
{
    char report[256] = "x";
    const char *pats[] = { "lib.open ok", pat };
    assert_rc(capffi_expect(ctx, 0, 0, pats, 2, report, sizeof report),
              CAPFFI_EINVAL);
    assert_string_equal(report, "");
    char want[128];
    snprintf(want, sizeof want, "pattern 2 ('%s'), byte %zu:", pat, byte);
    const char *msg = capffi_ctx_errmsg(ctx);
    if (!strstr(msg, want))
        fail_msg("message '%s' does not say '%s'", msg, want);
}

static void
expect_refuses_bad_input(void **state)
{
    struct lib_fx *f = *state;
    malformed(f->ctx, "lib.opne ok", 0);
    malformed(f->ctx, "  lib.opne ok", 2);
    malformed(f->ctx, "lib.open okay", 9);
    malformed(f->ctx, "lib.open EPERMS", 9);
    malformed(f->ctx, "lib.open", 8);
    malformed(f->ctx, "", 0);
    malformed(f->ctx, "   ", 3);
    const char *pats[] = { "lib.open ok" };
    const char *nullpat[] = { NULL };
    assert_rc(capffi_expect(f->ctx, 0, 0, nullpat, 1, NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_expect(NULL, 0, 0, pats, 1, NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_expect(f->ctx, 0, 0, NULL, 1, NULL, 0), CAPFFI_EINVAL);
    assert_rc(capffi_expect(f->ctx, 0, 0x4u, pats, 1, NULL, 0), CAPFFI_EINVAL);

    /* No recorder. */
    capffi_ctx *bare = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    (void)mint(bare, "x", 0);
    assert_rc(capffi_expect(bare, 0, CAPFFI_EXPECT_EXACT, NULL, 0, NULL, 0),
              CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(bare), "capffi_audit_record"));
    capffi_ctx_free(bare);
}

static void
expect_refuses_to_guess_after_drops(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 4));
    uint64_t mark = capffi_audit_mark(f->ctx);
    for (int i = 0; i < 6; i++)
        query(f->ctx, "/tmp");
    const char *pats[] = { "perm.query ok /tmp" };
    char report[256];
    assert_rc(capffi_expect(f->ctx, mark, 0, pats, 1, report, sizeof report),
              CAPFFI_EBUSY);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "dropped 2"));
    /* Since a later mark nothing was dropped. */
    mark = capffi_audit_mark(f->ctx);
    query(f->ctx, "/tmp");
    expect_ok(f->ctx, mark, CAPFFI_EXPECT_EXACT, pats, 1);
}

static void
expect_report_fits_its_buffer(void **state)
{
    struct lib_fx *f = *state;
    capffi_lib *lib;
    capffi_fn *fn;
    uint64_t mark = open_and_bind(f, &lib, &fn);
    const char *pats[] = { "lib.bind ok fx_sub_i32" };
    char first[128];
    snprintf(first, sizeof first,
             "audit: 0 of 1 pattern matched (since seq %llu; any order)",
             (unsigned long long)mark);
    assert_rc(capffi_expect(f->ctx, mark, 0, pats, 1, NULL, 0),
              CAPFFI_ENOTFOUND);
    assert_string_equal(capffi_ctx_errmsg(f->ctx), first);

    char full[2048];
    assert_rc(capffi_expect(f->ctx, mark, 0, pats, 1, full, sizeof full),
              CAPFFI_ENOTFOUND);
    assert_memory_equal(full, first, strlen(first));
    assert_true(full[strlen(first)] == '\n');
    assert_non_null(strstr(full, "  - [1] lib.bind ok fx_sub_i32\n"));

    char small[17];
    memset(small, 'x', sizeof small);
    assert_rc(capffi_expect(f->ctx, mark, 0, pats, 1, small, 16),
              CAPFFI_ENOTFOUND);
    assert_int_equal(small[15], '\0');
    assert_int_equal(small[16], 'x');
    assert_memory_equal(small, full, 15);
    assert_string_equal(capffi_ctx_errmsg(f->ctx), first);

    /* A match writes the one-line summary. */
    const char *good[] = { "lib.bind ok fx_add_i32" };
    assert_ok(capffi_expect(f->ctx, mark, 0, good, 1, full, sizeof full));
    assert_non_null(strstr(full, "audit: 1 of 1 pattern matched"));
    assert_null(strchr(full, '\n'));
    capffi_fn_free(fn);
    capffi_lib_close(lib);
}

/* ---- targets (audit.h's table) ------------------------------------------ */

/* capffi_lib_open of path through tok returns rc and writes exactly one
 * event, "lib.open <status> <target>"; the library, if opened, is closed
 * after. */
static void
open_writes(struct lib_fx *f, const capffi_token *tok, const char *path, int rc,
            const char *status, const char *target)
{
    capffi_lib *lib = NULL;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_lib_open(&lib, f->ctx, tok, path, 0), rc);
    char pat[PATH_MAX + 32];
    snprintf(pat, sizeof pat, "lib.open %s %s", status, target);
    expect_one(f->ctx, mark, pat);
    if (rc == CAPFFI_OK) {
        assert_non_null(lib);
        capffi_lib_close(lib);
    } else {
        assert_null(lib);
    }
}

static void
expect_lib_open_refusals_name_the_path_as_given(void **state)
{
    struct lib_fx *f = *state;
    char canon[PATH_MAX], spelled[PATH_MAX];
    fixture_canon(canon);
    /* Another spelling of the same file. */
    const char *slash = strrchr(canon, '/');
    assert_non_null(slash);
    pathf(spelled, "%.*s/./%s", (int)(slash - canon), canon, slash + 1);
    assert_string_not_equal(spelled, canon);

    /* A refusal of the token comes before the path is looked at: the
     * path as given (audit.h, "Targets"). */
    capffi_token forged = mint(f->ctx, "forged", 0);
    forged.tag[0] ^= 1;
    open_writes(f, &forged, spelled, CAPFFI_ETOKEN, "ETOKEN", spelled);

    capffi_token gone = mint(f->ctx, "gone", 0);
    assert_ok(capffi_token_revoke(f->ctx, &gone));
    open_writes(f, &gone, spelled, CAPFFI_EREVOKED, "EREVOKED", spelled);

    /* A token that may open it: the canonical path. */
    open_writes(f, &f->tok, spelled, CAPFFI_OK, "ok", canon);
}

static void
expect_cb_new_names_the_signature(void **state)
{
    struct lib_fx *f = *state;
    struct inc c = { 0, 0 };
    capffi_cb *cb = NULL;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "(i32)  ->  i32", inc_handler,
                            &c, 0));
    expect_one(f->ctx, mark, "cb.new ok (i32)  ->  i32");
    first_names_code(f->ctx, mark, cb, false);
    capffi_cb_close(cb);

    capffi_token nocb = mint(f->ctx, "nocb", CAPFFI_RIGHT_READ);
    capffi_cb *no = NULL;
    mark = capffi_audit_mark(f->ctx);
    assert_rc(
        capffi_cb_new(&no, f->ctx, &nocb, "(i32) -> i32", inc_handler, &c, 0),
        CAPFFI_EPERM);
    assert_null(no);
    expect_one(f->ctx, mark, "cb.new EPERM (i32) -> i32");
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, lib_fx_teardown)
    const struct CMUnitTest tests[] = {
        T(expect_mark_is_the_newest_seq),
        T(expect_count_where_matches_every_field),
        T(expect_next_iterates_in_order_then_ends),
        T(expect_reset_empties_and_keeps_the_sequence),
        T(expect_jsonl_stable_is_golden),
        T(expect_jsonl_where_filters_and_checks_flags),
        T(expect_calls_write_one_event_per_call),
        T(expect_calls_holds_layer_on_the_host),
        T(expect_fn_audit_is_per_function),
        T(expect_fn_from_ptr_calls_name_the_address),
        T(expect_jobs_are_audited),
        T(expect_invocations_write_one_event_each),
        T(expect_failed_invocation_is_a_refusal_not_a_success),
        T(expect_orders_and_matches),
        T(expect_status_words),
        T(expect_refuses_bad_input),
        T(expect_refuses_to_guess_after_drops),
        T(expect_report_fits_its_buffer),
        T(expect_lib_open_refusals_name_the_path_as_given),
        T(expect_cb_new_names_the_signature),
    };
#undef T
    return RUN_TESTS("expect", tests);
}
