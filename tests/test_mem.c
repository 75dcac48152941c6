/*
 * test_mem.c - buffers (pins, lending, deferred and double free),
 * pointer-of, views and struct results (suites: unit, mem; the refusals
 * are also in security).
 */
#include "helpers.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory/buf.h"
#include "fixture.h"

static int
setup(void **state)
{
    struct lib_fx *f = calloc(1, sizeof *f);
    lib_fx_open(f, 0, "CAPFFI_FIXTURE_DIR", "CAPFFI_FIXTURE", "mem");
    assert_ok(capffi_audit_record(f->ctx, 4096));
    *state = f;
    return 0;
}

static capffi_fn *
bind(struct lib_fx *f, const char *sym, const char *sig)
{
    return lib_fx_bind(f, sym, sig, 0);
}

static void
count_release(void *payload, void *mem)
{
    (void)mem;
    ++*(int *)payload;
}

/* ---- buffers ----------------------------------------------------------- */

static void
buf_new_is_zeroed_and_empty_passes_null(void **state)
{
    struct lib_fx *f = *state;
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 64));
    void *p;
    size_t n;
    assert_ok(capffi_buf_data(&p, &n, b));
    assert_int_equal(n, 64);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((unsigned char *)p)[i], 0);

    /* fx_strlen(NULL) is (size_t)-1: an empty buffer passes NULL. */
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize");
    capffi_buf *empty;
    assert_ok(capffi_buf_new(&empty, f->ctx, 0));
    capffi_value a = { .buf = empty }, r;
    assert_ok(capffi_fn_call(len, &a, &r));
    assert_int_equal(r.u64, (uint64_t)-1);
    memcpy(p, "abc", 4);
    a.buf = b;
    assert_ok(capffi_fn_call(len, &a, &r));
    assert_int_equal(r.u64, 3);
}

/* Native code keeps the address; the host frees the buffer; the bytes
 * stay valid until unpinned (AddressSanitizer checks every access). */
static void
buf_pinned_memory_outlives_free(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *keep = bind(f, "fx_keep", "(pointer) -> void");
    capffi_fn *sum = bind(f, "fx_kept_sum", "(usize) -> u64");
    capffi_fn *fill = bind(f, "fx_kept_fill", "(u8, usize) -> void");

    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 32));
    void *p;
    assert_ok(capffi_ptr_of(&p, f->ctx, &f->tok, b));
    assert_non_null(p);
    assert_int_equal(capffi_buf_pins(b), 1);
    capffi_value a[2] = { { .p = p } }, r;
    assert_ok(capffi_fn_call(keep, a, NULL));

    capffi_buf_free(b); /* deferred: pinned */
    assert_int_equal(capffi_buf_pins(b), 1);
    void *q;
    assert_rc(capffi_buf_data(&q, NULL, b), CAPFFI_EINVAL);
    assert_null(q);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "freed"));

    a[0].u64 = 7;
    a[1].u64 = 32;
    assert_ok(capffi_fn_call(fill, a, NULL));
    a[0].u64 = 32;
    assert_ok(capffi_fn_call(sum, a, &r));
    assert_int_equal(r.u64, 7 * 32);

    /* A freed buffer is refused as an argument and by pointer-of. */
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize");
    a[0].buf = b;
    assert_rc(capffi_fn_call(len, a, &r), CAPFFI_EINVAL);
    assert_rc(capffi_ptr_of(&q, f->ctx, &f->tok, b), CAPFFI_EINVAL);

    assert_ok(capffi_buf_unpin(b)); /* released now */
    assert_int_equal(capffi_buf_pins(b), 0);
    assert_rc(capffi_buf_unpin(b), CAPFFI_EINVAL);
}

static void
buf_wrapped_release_waits_for_last_pin(void **state)
{
    struct lib_fx *f = *state;
    static char mem[16];
    int released = 0;
    capffi_buf *b;
    assert_ok(
        capffi_buf_wrap(&b, f->ctx, mem, sizeof mem, count_release, &released));
    void *p1, *p2;
    assert_ok(capffi_ptr_of(&p1, f->ctx, &f->tok, b));
    assert_ok(capffi_ptr_of(&p2, f->ctx, &f->tok, b));
    assert_ptr_equal(p1, mem);
    assert_int_equal(capffi_buf_pins(b), 2);
    capffi_buf_free(b);
    assert_int_equal(released, 0);
    assert_ok(capffi_buf_unpin(b));
    assert_int_equal(released, 0);
    assert_ok(capffi_buf_unpin(b));
    assert_int_equal(released, 1);
}

/* ---- H2: buffers held for the call that uses them ----------------------- */

/* What a wrapped buffer held when its release ran: malloc'd bytes, freed
 * by the release, so a write after it is a use after free as well. */
struct released {
    int count;
    unsigned char seen[8];
};

static void
record_release(void *payload, void *mem)
{
    struct released *r = payload;
    memcpy(r->seen, mem, sizeof r->seen);
    r->count++;
    free(mem);
}

static capffi_buf *
wrapped8(struct lib_fx *f, struct released *r)
{
    memset(r, 0, sizeof *r);
    void *mem = calloc(1, 8);
    assert_non_null(mem);
    capffi_buf *b;
    assert_ok(capffi_buf_wrap(&b, f->ctx, mem, 8, record_release, r));
    return b;
}

static void
free_payload_buffer(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)args;
    (void)ret;
    capffi_buf *b = payload;
    capffi_buf_free(b);
    /* Freed for the host at once: only the release waits for the call. */
    void *p;
    assert_rc(capffi_buf_data(&p, NULL, b), CAPFFI_EINVAL);
}

/*
 * H2 (measured): a handler freed a buffer that the running native call
 * (sqlite3_exec's error message) then wrote into. Every buffer argument
 * is held until the native function returns.
 */
static void
buf_freed_by_a_handler_waits_for_the_call(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *fill =
        bind(f, "fx_fill_after", "(function, buffer, usize, u8) -> void");
    struct released r;
    capffi_buf *b = wrapped8(f, &r);
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "() -> void",
                            free_payload_buffer, b, 0));
    capffi_value args[4] = {
        { .p = cb }, { .buf = b }, { .u64 = 8 }, { .u64 = 0x5a }
    };
    assert_ok(capffi_fn_call(fill, args, NULL));
    assert_int_equal(r.count, 1);
    for (size_t i = 0; i < sizeof r.seen; i++)
        assert_int_equal(r.seen[i], 0x5a); /* released after the write */
    assert_int_equal(cb_status(cb).first, 0);

    /* The same for buffers capffi allocated (valgrind and ASan watch the
     * write), and for a buffer passed twice. */
    capffi_buf *own;
    assert_ok(capffi_buf_new(&own, f->ctx, 4096));
    capffi_cb *cb2;
    assert_ok(capffi_cb_new(&cb2, f->ctx, &f->tok, "() -> void",
                            free_payload_buffer, own, 0));
    capffi_fn *fill2 = bind(f, "fx_fill_after",
                            "(function, buffer, usize, u8, buffer) -> void");
    capffi_value args2[5] = { { .p = cb2 },
                              { .buf = own },
                              { .u64 = 4096 },
                              { .u64 = 1 },
                              { .buf = own } };
    assert_ok(capffi_fn_call(fill2, args2, NULL));
    assert_rc(capffi_buf_data(NULL, NULL, own), CAPFFI_EINVAL);

    /* A call refused at a later argument drops the holds it took. */
    b = wrapped8(f, &r);
    args[1].buf = b;
    args[3].u64 = 300; /* not a u8 */
    assert_rc(capffi_fn_call(fill, args, NULL), CAPFFI_ERANGE);
    capffi_value bad[5] = {
        { .p = cb2 }, { .buf = b }, { .u64 = 8 }, { .u64 = 1 }, { .buf = own }
    };
    assert_rc(capffi_fn_call(fill2, bad, NULL), CAPFFI_EINVAL);
    capffi_buf_free(b);
    assert_int_equal(r.count, 1);
}

/* A C function passed as the callback of fx_fill_after from another
 * thread: it tells the test it is running, then waits to be let go. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_state; /* 0 idle, 1 inside the call, 2 let go */

static void
gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_state = 1;
    pthread_cond_broadcast(&gate_cond);
    while (gate_state != 2)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static void
gate_wait_for(int want)
{
    pthread_mutex_lock(&gate_lock);
    while (gate_state != want)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static void
gate_set(int v)
{
    pthread_mutex_lock(&gate_lock);
    gate_state = v;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

struct foreign_call {
    capffi_fn *fn;
    capffi_value args[4];
    int rc;
};

static void *
call_on_thread(void *arg)
{
    struct foreign_call *c = arg;
    c->rc = capffi_fn_call(c->fn, c->args, NULL);
    return NULL;
}

/*
 * H2 on another thread: the owner frees a buffer while a call on another
 * thread is inside native code with it. The bytes stay until that call
 * returns; the release then runs on the owner thread, at its next poll.
 */
static void
buf_freed_during_a_foreign_call_waits_for_it(void **state)
{
    struct lib_fx *f = *state;
    struct released r;
    capffi_buf *b = wrapped8(f, &r);
    capffi_fn *code;
    void (*gate_fn)(void) = gate;
    void *gate_code;
    memcpy(&gate_code, &gate_fn, sizeof gate_code);
    assert_ok(
        capffi_fn_from_ptr(&code, f->ctx, &f->tok, gate_code, "() -> void", 0));
    struct foreign_call c = {
        .fn = bind(f, "fx_fill_after", "(function, buffer, usize, u8) -> void"),
        .args = { { .p = code }, { .buf = b }, { .u64 = 8 }, { .u64 = 7 } },
        .rc = 1,
    };
    gate_set(0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, call_on_thread, &c), 0);
    gate_wait_for(1);
    capffi_buf_free(b);
    assert_int_equal(r.count, 0); /* the call holds it */
    gate_set(2);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_ok(c.rc);
    assert_int_equal(r.count, 0); /* not released on the foreign thread */
    capffi_ctx_poll(f->ctx, 0);
    assert_int_equal(r.count, 1);
    for (size_t i = 0; i < sizeof r.seen; i++)
        assert_int_equal(r.seen[i], 7);
}

static void
buf_unpin_refuses_unpinned(void **state)
{
    struct lib_fx *f = *state;
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 4));
    assert_rc(capffi_buf_unpin(b), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "not pinned"));
    assert_rc(capffi_buf_unpin(NULL), CAPFFI_EINVAL);
    /* An empty buffer's address is NULL, and it is pinned all the same. */
    capffi_buf *e;
    assert_ok(capffi_buf_new(&e, f->ctx, 0));
    void *p = (void *)1;
    assert_ok(capffi_ptr_of(&p, f->ctx, &f->tok, e));
    assert_null(p);
    assert_ok(capffi_buf_unpin(e));
}

static void
buf_double_free_is_recognised(void **state)
{
    struct lib_fx *f = *state;
    int released = 0;
    char mem[4];
    capffi_buf *b;
    assert_ok(
        capffi_buf_wrap(&b, f->ctx, mem, sizeof mem, count_release, &released));
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_buf_free(b);
    assert_int_equal(released, 1);
    capffi_buf_free(b);
    assert_int_equal(released, 1);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "already freed"));
    /* A free is not audited; the refused second one is. */
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "buf.free EINVAL");

    /* A second free while the first is deferred is refused too, and the
     * release still happens once, at the unpin. */
    capffi_buf *c;
    assert_ok(
        capffi_buf_wrap(&c, f->ctx, mem, sizeof mem, count_release, &released));
    void *p;
    assert_ok(capffi_ptr_of(&p, f->ctx, &f->tok, c));
    mark = capffi_audit_mark(f->ctx);
    capffi_buf_free(c);
    capffi_buf_free(c);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "buf.free EINVAL");
    assert_int_equal(released, 1);
    assert_ok(capffi_buf_unpin(c));
    assert_int_equal(released, 2);

    /* Something that is not a buffer at all. */
    uint64_t junk[8] = { 0 };
    capffi_buf_free((capffi_buf *)junk);
    assert_non_null(strstr(capffi_ctx_errmsg(NULL), "not a capffi_buf"));
}

/* Many frees: dead structs are reused, oldest first, once more than
 * CAPFFI__RECYCLE_KEEP wait, so memory stays bounded, and nothing leaks
 * (the leak checkers of the sanitizer and valgrind runs see to that). A
 * freed buffer is recognised until its struct is reused. */
static void
buf_quarantine_recycles(void **state)
{
    struct lib_fx *f = *state;
    long before = capffi__alloc_live();
    capffi_buf *first;
    assert_ok(capffi_buf_new(&first, f->ctx, 8));
    capffi_buf_free(first);
    for (int i = 0; i < CAPFFI__RECYCLE_KEEP * 3; i++) {
        capffi_buf *b;
        assert_ok(capffi_buf_new(&b, f->ctx, 8));
        capffi_buf_free(b);
        if (i == CAPFFI__RECYCLE_KEEP - 1) {
            capffi_buf_free(first); /* still dead, still recognised */
            assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "already freed"));
        }
    }
    /* Only the waiting structs (at most CAPFFI__RECYCLE_KEEP + 1), their
     * ring and the recorder's growth remain, not one per round. */
    assert_true(capffi__alloc_live() - before <= CAPFFI__RECYCLE_KEEP + 3);
}

/* The lend state machine the nonblocking calls use (C5). */
static void
buf_lent_is_busy_and_free_waits(void **state)
{
    struct lib_fx *f = *state;
    int released = 0;
    static char mem[8] = "abcdefg";
    capffi_buf *b;
    assert_ok(
        capffi_buf_wrap(&b, f->ctx, mem, sizeof mem, count_release, &released));
    capffi_view *bv;
    assert_ok(capffi_view_of_buf(&bv, b, CAPFFI_VIEW_READ));
    assert_ok(capffi__buf_lend(b));
    assert_rc(capffi__buf_lend(b), CAPFFI_EBUSY);

    void *p;
    assert_rc(capffi_buf_data(&p, NULL, b), CAPFFI_EBUSY);
    assert_null(p);
    assert_rc(capffi_ptr_of(&p, f->ctx, &f->tok, b), CAPFFI_EBUSY);
    capffi_fn *len = bind(f, "fx_strlen", "(buffer) -> usize");
    capffi_value a = { .buf = b }, r;
    assert_rc(capffi_fn_call(len, &a, &r), CAPFFI_EBUSY);
    capffi_view *v2;
    assert_rc(capffi_view_of_buf(&v2, b, CAPFFI_VIEW_READ), CAPFFI_EBUSY);
    assert_rc(capffi_view_get(&r, bv, 0, "u8"), CAPFFI_EBUSY);

    capffi_buf_free(b);
    capffi_view_free(bv);
    assert_int_equal(released, 0); /* still lent */
    capffi__buf_unlend(b);
    assert_int_equal(released, 1);
}

static void
buf_unlend_restores_access(void **state)
{
    struct lib_fx *f = *state;
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 4));
    assert_ok(capffi__buf_lend(b));
    capffi__buf_unlend(b);
    void *p;
    assert_ok(capffi_buf_data(&p, NULL, b));
    assert_ok(capffi__buf_lend(b));
    capffi__buf_unlend(b);
    capffi_buf_free(b);
}

/* ---- pointer-of and pointers from integers ------------------------------ */

static void
ptr_needs_pointer_right(void **state)
{
    struct lib_fx *f = *state;
    capffi_token weak = mint(f->ctx, "weak", CAPFFI_RIGHT_READ);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 4));
    uint64_t mark = capffi_audit_mark(f->ctx);
    void *p = (void *)1;
    assert_rc(capffi_ptr_of(&p, f->ctx, &weak, b), CAPFFI_EPERM);
    assert_null(p);
    assert_int_equal(capffi_buf_pins(b), 0);
    assert_rc(capffi_ptr_from_addr(&p, f->ctx, &weak, 0x1000), CAPFFI_EPERM);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ptr.of EPERM buffer of 4 bytes",
                  "ptr.from_addr EPERM 0x1000");

    capffi_token ptr = mint(f->ctx, "ptr", CAPFFI_RIGHT_POINTER);
    mark = capffi_audit_mark(f->ctx);
    assert_ok(capffi_ptr_from_addr(&p, f->ctx, &ptr, 0x1000));
    assert_ptr_equal(p, (void *)0x1000);
    assert_ok(capffi_ptr_of(&p, f->ctx, &ptr, b));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ptr.from_addr ok 0x1000", "ptr.of ok buffer of 4 bytes");

    assert_ok(capffi_token_revoke(f->ctx, &ptr));
    mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_ptr_of(&p, f->ctx, &ptr, b), CAPFFI_EREVOKED);
    capffi_token forged = ptr;
    forged.tag[0] ^= 1;
    assert_rc(capffi_ptr_of(&p, f->ctx, &forged, b), CAPFFI_ETOKEN);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  "ptr.of EREVOKED buffer of 4 bytes",
                  "ptr.of ETOKEN buffer of 4 bytes");
    assert_ok(capffi_buf_unpin(b));
}

static void
ptr_of_refuses_foreign_buffer(void **state)
{
    struct lib_fx *f = *state;
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, other, 4));
    void *p;
    assert_rc(capffi_ptr_of(&p, f->ctx, &f->tok, b), CAPFFI_EINVAL);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "another context"));
    assert_int_equal(capffi_buf_pins(b), 0);
    assert_rc(capffi_ptr_of(&p, f->ctx, &f->tok, NULL), CAPFFI_EINVAL);
    capffi_ctx_free(other);
}

/* ---- views ------------------------------------------------------------- */

static capffi_view *
view(struct lib_fx *f, const void *p, size_t n, uint32_t access)
{
    capffi_view *v = NULL;
    int rc = capffi_view_new(&v, f->ctx, &f->tok, p, n, access);
    if (rc)
        fail_msg("capffi_view_new: %s: %s", capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    return v;
}

static void
view_get_set_every_scalar_unaligned(void **state)
{
    struct lib_fx *f = *state;
    unsigned char mem[64];
    memset(mem, 0xee, sizeof mem);
    capffi_view *v =
        view(f, mem, sizeof mem, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE);
    capffi_value x, y;
    for (size_t off = 1; off < 4; off++) { /* unaligned on purpose */
        x.i64 = -5;
        assert_ok(capffi_view_set(v, off, "i8", x));
        assert_ok(capffi_view_get(&y, v, off, "i8"));
        assert_int_equal(y.i64, -5);
        assert_ok(capffi_view_get(&y, v, off, "u8"));
        assert_int_equal(y.u64, 251);
        x.i64 = -30000;
        assert_ok(capffi_view_set(v, off, "i16", x));
        assert_ok(capffi_view_get(&y, v, off, "i16"));
        assert_int_equal(y.i64, -30000);
        x.u64 = 65535;
        assert_ok(capffi_view_set(v, off, "u16", x));
        assert_ok(capffi_view_get(&y, v, off, "u16"));
        assert_int_equal(y.u64, 65535);
        x.i64 = INT32_MIN;
        assert_ok(capffi_view_set(v, off, "i32", x));
        assert_ok(capffi_view_get(&y, v, off, "i32"));
        assert_int_equal(y.i64, INT32_MIN);
        int32_t raw;
        memcpy(&raw, mem + off, 4);
        assert_int_equal(raw, INT32_MIN);
        x.u64 = UINT32_MAX;
        assert_ok(capffi_view_set(v, off, "u32", x));
        assert_ok(capffi_view_get(&y, v, off, "u32"));
        assert_int_equal(y.u64, UINT32_MAX);
        x.i64 = INT64_MIN + 3;
        assert_ok(capffi_view_set(v, off, "i64", x));
        assert_ok(capffi_view_get(&y, v, off, "i64"));
        assert_true(y.i64 == INT64_MIN + 3);
        x.u64 = UINT64_MAX - 1;
        assert_ok(capffi_view_set(v, off, "u64", x));
        assert_ok(capffi_view_get(&y, v, off, "u64"));
        assert_true(y.u64 == UINT64_MAX - 1);
        x.i64 = -77;
        assert_ok(capffi_view_set(v, off, "isize", x));
        assert_ok(capffi_view_get(&y, v, off, "isize"));
        assert_int_equal(y.i64, -77);
        x.u64 = 1234567;
        assert_ok(capffi_view_set(v, off, "usize", x));
        assert_ok(capffi_view_get(&y, v, off, "usize"));
        assert_int_equal(y.u64, 1234567);
        x.f32 = 1.5f;
        assert_ok(capffi_view_set(v, off, "f32", x));
        assert_ok(capffi_view_get(&y, v, off, "f32"));
        assert_true(y.f32 == 1.5f);
        float rawf;
        memcpy(&rawf, mem + off, 4);
        assert_true(rawf == 1.5f);
        x.f64 = -0.25;
        assert_ok(capffi_view_set(v, off, "f64", x));
        assert_ok(capffi_view_get(&y, v, off, "f64"));
        assert_true(y.f64 == -0.25);
        x.p = mem;
        assert_ok(capffi_view_set(v, off, "pointer", x));
        assert_ok(capffi_view_get(&y, v, off, "pointer"));
        assert_ptr_equal(y.p, mem);
        assert_ok(capffi_view_get(&y, v, off, "function"));
        assert_ptr_equal(y.p, mem);
        x.b = true;
        assert_ok(capffi_view_set(v, off, "bool", x));
        assert_int_equal(mem[off], 1);
        assert_ok(capffi_view_get(&y, v, off, "bool"));
        assert_true(y.b);
    }
    assert_int_equal(mem[0], 0xee); /* nothing before the offsets moved */
}

/*
 * Every scalar width at every offset around the end of a 16-byte window
 * in a larger block: inside works, anything crossing the end is
 * CAPFFI_EBOUNDS, and no byte outside the window is read or written.
 */
static void
view_every_offset_around_the_end(void **state)
{
    struct lib_fx *f = *state;
    unsigned char mem[48];
    memset(mem, 0x5a, sizeof mem);
    unsigned char *win = mem + 16;
    capffi_view *v = view(f, win, 16, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE);
    static const struct {
        const char *type;
        size_t size;
    } types[] = { { "u8", 1 },  { "i16", 2 }, { "u32", 4 },
                  { "f32", 4 }, { "i64", 8 }, { "pointer", 8 } };
    size_t refused = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (size_t off = 0; off <= 24; off++) {
            bool fits = off + types[t].size <= 16;
            capffi_value x = { .u64 = 0 }, y;
            int rc = capffi_view_set(v, off, types[t].type, x);
            assert_int_equal(rc, fits ? CAPFFI_OK : CAPFFI_EBOUNDS);
            rc = capffi_view_get(&y, v, off, types[t].type);
            assert_int_equal(rc, fits ? CAPFFI_OK : CAPFFI_EBOUNDS);
            if (!fits)
                assert_int_equal(y.u64, 0);
            char buf[8];
            rc = capffi_view_copy(buf, v, off, types[t].size);
            assert_int_equal(rc, fits ? CAPFFI_OK : CAPFFI_EBOUNDS);
            refused += fits ? 0 : 3;
        }
        const size_t huge[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7,
                                SIZE_MAX / 2 };
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            capffi_value y;
            assert_rc(capffi_view_get(&y, v, huge[h], types[t].type),
                      CAPFFI_EBOUNDS);
            refused++;
        }
    }
    /* Lengths that overflow size_t when added to the offset. */
    char c;
    assert_rc(capffi_view_copy(&c, v, 1, SIZE_MAX), CAPFFI_EBOUNDS);
    assert_rc(capffi_view_write(v, 8, &c, SIZE_MAX - 4), CAPFFI_EBOUNDS);
    assert_rc(capffi_view_copy(&c, v, 17, 0), CAPFFI_EBOUNDS);
    assert_ok(capffi_view_copy(&c, v, 16, 0));
    refused += 3;
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(mem[i], 0x5a);
    for (size_t i = 32; i < 48; i++)
        assert_int_equal(mem[i], 0x5a);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "do not fit"));
    assert_int_equal(audited(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EBOUNDS),
                     refused);
}

/*
 * A2: a loop of refused accesses (a script probing memory) leaves one
 * event per view a second, each counting the refusals it stands for, and
 * none is lost: freeing the view delivers what was still counted.
 */
static void
view_refusals_in_a_loop_are_coalesced(void **state)
{
    struct lib_fx *f = *state;
    unsigned char mem[8] = { 0 };
    capffi_view *v = view(f, mem, sizeof mem, CAPFFI_VIEW_READ);
    size_t before =
        capffi_audit_count(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EBOUNDS, NULL);
    capffi_value x;
    for (size_t i = 0; i < 1000; i++)
        assert_rc(capffi_view_get(&x, v, 8 + i, "u8"), CAPFFI_EBOUNDS);
    size_t events = capffi_audit_count(f->ctx, CAPFFI_OP_VIEW_ACCESS,
                                       CAPFFI_EBOUNDS, NULL) -
                    before;
    assert_true(events >= 1 && events <= 3); /* one a second */
    capffi_view_free(v); /* delivers the count still pending */
    size_t total = 0;
    capffi_event ev;
    for (size_t i = 0; capffi_audit_get(&ev, f->ctx, i) == CAPFFI_OK; i++)
        if (ev.op == CAPFFI_OP_VIEW_ACCESS && ev.status == CAPFFI_EBOUNDS)
            total += ev.count;
    assert_int_equal(total, 1000);
}

static void
view_access_modes_and_rights(void **state)
{
    struct lib_fx *f = *state;
    uint32_t mem[4] = { 1, 2, 3, 4 };
    capffi_view *ro = view(f, mem, sizeof mem, CAPFFI_VIEW_READ);
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_value x = { .u64 = 9 }, y;
    assert_rc(capffi_view_set(ro, 0, "u32", x), CAPFFI_EPERM);
    assert_rc(capffi_view_write(ro, 0, &x, 4), CAPFFI_EPERM);
    assert_int_equal(mem[0], 1);
    capffi_view *wo = view(f, mem, sizeof mem, CAPFFI_VIEW_WRITE);
    assert_rc(capffi_view_get(&y, wo, 0, "u32"), CAPFFI_EPERM);
    assert_ok(capffi_view_set(wo, 4, "u32", x));
    assert_int_equal(mem[1], 9);
    /* Each view's refusals are coalesced, but two of ro's make two events
     * whatever the clock (the first at once, the other alone or counted
     * and delivered by capffi_expect's flush): exact, in any order. */
    char made[64], refused[80];
    snprintf(made, sizeof made, "view.new ok %p+16", (void *)mem);
    snprintf(refused, sizeof refused, "view.access EPERM %p+16 \\[0, +4)",
             (void *)mem);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, refused, refused, made,
                  refused);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EPERM), 3);

    /* The token must hold the matching right. */
    capffi_token r = mint(f->ctx, "reader", CAPFFI_RIGHT_READ);
    mark = capffi_audit_mark(f->ctx);
    capffi_view *v = (capffi_view *)1;
    assert_rc(capffi_view_new(&v, f->ctx, &r, mem, 16,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE),
              CAPFFI_EPERM);
    assert_null(v);
    assert_ok(capffi_view_new(&v, f->ctx, &r, mem, 16, CAPFFI_VIEW_READ));
    capffi_token w = mint(f->ctx, "writer", CAPFFI_RIGHT_WRITE);
    assert_rc(capffi_view_new(&v, f->ctx, &w, mem, 16, CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    char denied[64];
    snprintf(denied, sizeof denied, "view.new EPERM %p+16", (void *)mem);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  denied, made, "token.new ok", denied);
}

static void
view_bad_input(void **state)
{
    struct lib_fx *f = *state;
    char mem[8] = { 0 };
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_view *v = (capffi_view *)1;
    assert_rc(capffi_view_new(&v, f->ctx, &f->tok, NULL, 8, CAPFFI_VIEW_READ),
              CAPFFI_EINVAL);
    assert_null(v);
    assert_rc(capffi_view_new(&v, f->ctx, &f->tok, mem, 8, 0), CAPFFI_EINVAL);
    assert_rc(capffi_view_new(&v, f->ctx, &f->tok, mem, 8, 0x80 | 1),
              CAPFFI_EINVAL);
    assert_rc(capffi_view_new(&v, f->ctx, &f->tok, (void *)(UINTPTR_MAX - 4), 8,
                              CAPFFI_VIEW_READ),
              CAPFFI_EINVAL);
    assert_rc(capffi_view_new(NULL, f->ctx, &f->tok, mem, 8, CAPFFI_VIEW_READ),
              CAPFFI_EINVAL);
    /* Each is audited under the address and length it was given. */
    char bad_mem[64], bad_null[64], bad_wrap[64];
    snprintf(bad_mem, sizeof bad_mem, "view.new EINVAL %p+8", (void *)mem);
    snprintf(bad_null, sizeof bad_null, "view.new EINVAL %p+8", (void *)NULL);
    snprintf(bad_wrap, sizeof bad_wrap, "view.new EINVAL %p+8",
             (void *)(UINTPTR_MAX - 4));
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  bad_null, bad_mem, bad_mem, bad_wrap, bad_mem);

    v = view(f, mem, sizeof mem, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE);
    capffi_value y;
    assert_rc(capffi_view_get(&y, v, 0, "cstring"), CAPFFI_ETYPE);
    assert_rc(capffi_view_get(&y, v, 0, "{i32}"), CAPFFI_ETYPE);
    assert_rc(capffi_view_get(&y, v, 0, "i33"), CAPFFI_ETYPE);
    assert_rc(capffi_view_get(&y, v, 0, ""), CAPFFI_ETYPE);
    assert_rc(capffi_view_get(&y, v, 0, NULL), CAPFFI_EINVAL);
    assert_rc(capffi_view_get(NULL, v, 0, "i32"), CAPFFI_EINVAL);
    assert_rc(capffi_view_get(&y, NULL, 0, "i32"), CAPFFI_EINVAL);
    assert_rc(capffi_view_copy(NULL, v, 0, 1), CAPFFI_EINVAL);
    assert_int_equal(capffi_view_len(v), 8);
    assert_int_equal(capffi_view_len(NULL), 0);

    /* Small integers are range-checked on the way in. */
    capffi_value x = { .u64 = 300 };
    assert_rc(capffi_view_set(v, 0, "u8", x), CAPFFI_ERANGE);
    x.i64 = -129;
    assert_rc(capffi_view_set(v, 0, "i8", x), CAPFFI_ERANGE);
    x.i64 = 1 << 15;
    assert_rc(capffi_view_set(v, 0, "i16", x), CAPFFI_ERANGE);
    x.i64 = -1;
    assert_rc(capffi_view_set(v, 0, "u32", x), CAPFFI_ERANGE);
    for (size_t i = 0; i < sizeof mem; i++)
        assert_int_equal(mem[i], 0);
    x.i64 = -128;
    assert_ok(capffi_view_set(v, 0, "i8", x));
    assert_int_equal((signed char)mem[0], -128);
    capffi_view_free(v);
    capffi_view_free(NULL);
}

/* The string ends exactly at a page that cannot be read: the search must
 * stop at the view's end and report the missing terminator (C4). */
static void
view_cstr_never_reads_past_the_view(void **state)
{
    struct lib_fx *f = *state;
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
    unsigned char *s = m + page - 8;
    memcpy(s, "abcdefgh", 8); /* no NUL before the guard page */
    capffi_view *v = view(f, s, 8, CAPFFI_VIEW_READ);
    const char *out = (const char *)1;
    size_t len = 99;
    assert_rc(capffi_view_cstr(&out, &len, v, 0), CAPFFI_EBOUNDS);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "no NUL"));
    assert_rc(capffi_view_cstr(&out, &len, v, 8), CAPFFI_EBOUNDS);
    assert_rc(capffi_view_cstr(&out, &len, v, 9), CAPFFI_EBOUNDS);

    s[5] = '\0';
    assert_ok(capffi_view_cstr(&out, &len, v, 0));
    assert_string_equal(out, "abcde");
    assert_int_equal(len, 5);
    assert_ok(capffi_view_cstr(&out, &len, v, 5));
    assert_int_equal(len, 0);
    capffi_view *wo = view(f, s, 8, CAPFFI_VIEW_WRITE);
    assert_rc(capffi_view_cstr(&out, &len, wo, 0), CAPFFI_EPERM);
    capffi_view_free(v);
    capffi_view_free(wo);
    munmap(m, (size_t)page * 2);
}

static void
view_revoked_with_its_token(void **state)
{
    struct lib_fx *f = *state;
    int64_t mem[2] = { 41, 42 };
    capffi_token parent = mint(f->ctx, "parent", 0);
    capffi_token child;
    capffi_scope sc = { .rights = CAPFFI_RIGHT_READ };
    assert_ok(capffi_token_attenuate(&child, f->ctx, &parent, &sc));
    capffi_view *v;
    assert_ok(
        capffi_view_new(&v, f->ctx, &child, mem, sizeof mem, CAPFFI_VIEW_READ));
    capffi_view *sub;
    assert_ok(capffi_view_sub(&sub, v, 8, 8, CAPFFI_VIEW_READ));
    capffi_value y;
    assert_ok(capffi_view_get(&y, sub, 0, "i64"));
    assert_int_equal(y.i64, 42);

    assert_ok(capffi_token_revoke(f->ctx, &parent)); /* cascades */
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_view_get(&y, v, 0, "i64"), CAPFFI_EREVOKED);
    assert_rc(capffi_view_get(&y, sub, 0, "i64"), CAPFFI_EREVOKED);
    const char *s;
    assert_rc(capffi_view_cstr(&s, NULL, v, 0), CAPFFI_EREVOKED);
    char buf[8];
    assert_rc(capffi_view_copy(buf, v, 0, 8), CAPFFI_EREVOKED);
    capffi_view *sub2;
    assert_rc(capffi_view_sub(&sub2, v, 0, 8, CAPFFI_VIEW_READ),
              CAPFFI_EREVOKED);
    /* v's four refusals are coalesced, so how many events stand for them
     * depends on the clock: the patterns name both views, every event
     * since the mark is such a refusal, and audited counts the five. */
    char of_v[80], of_sub[80];
    snprintf(of_v, sizeof of_v, "view.access EREVOKED %p+16 \\[0, +8)",
             (void *)mem);
    snprintf(of_sub, sizeof of_sub, "view.access EREVOKED %p+8 \\[0, +8)",
             (void *)&mem[1]);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED, of_v, of_sub);
    capffi_audit_filter all = CAPFFI_AUDIT_FILTER_ALL;
    all.since = mark;
    capffi_audit_filter refused = all;
    refused.op = CAPFFI_OP_VIEW_ACCESS;
    refused.status = CAPFFI_EREVOKED;
    assert_int_equal(capffi_audit_count_where(f->ctx, &refused),
                     capffi_audit_count_where(f->ctx, &all));
    assert_int_equal(audited(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EREVOKED),
                     5);
    /* A view of the host's own buffer has no token to lose. */
    capffi_view_free(sub);
    capffi_view_free(v);
}

static void
view_sub_only_shrinks(void **state)
{
    struct lib_fx *f = *state;
    uint8_t mem[16];
    for (int i = 0; i < 16; i++)
        mem[i] = (uint8_t)i;
    capffi_view *v = view(f, mem, sizeof mem, CAPFFI_VIEW_READ);
    capffi_view *s = (capffi_view *)1;
    assert_rc(capffi_view_sub(&s, v, 8, 9, CAPFFI_VIEW_READ), CAPFFI_EBOUNDS);
    assert_null(s);
    assert_rc(capffi_view_sub(&s, v, 17, 0, CAPFFI_VIEW_READ), CAPFFI_EBOUNDS);
    assert_rc(capffi_view_sub(&s, v, 1, SIZE_MAX, CAPFFI_VIEW_READ),
              CAPFFI_EBOUNDS);
    assert_rc(
        capffi_view_sub(&s, v, 0, 4, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE),
        CAPFFI_EPERM);
    assert_rc(capffi_view_sub(&s, v, 0, 4, 0), CAPFFI_EINVAL);
    assert_ok(capffi_view_sub(&s, v, 4, 8, CAPFFI_VIEW_READ));
    assert_int_equal(capffi_view_len(s), 8);
    capffi_value y;
    assert_ok(capffi_view_get(&y, s, 0, "u8"));
    assert_int_equal(y.u64, 4);
    assert_rc(capffi_view_get(&y, s, 8, "u8"), CAPFFI_EBOUNDS);
    capffi_view *ss;
    assert_ok(capffi_view_sub(&ss, s, 7, 1, CAPFFI_VIEW_READ));
    assert_ok(capffi_view_get(&y, ss, 0, "u8"));
    assert_int_equal(y.u64, 11);
    /* A sub-view outlives the view it came from. */
    capffi_view_free(v);
    assert_ok(capffi_view_get(&y, s, 7, "u8"));
    assert_int_equal(y.u64, 11);
}

static void
view_unbounded_needs_read_and_pointer(void **state)
{
    struct lib_fx *f = *state;
    capffi_fn *greet = bind(f, "fx_greeting", "() -> pointer");
    capffi_value r;
    assert_ok(capffi_fn_call(greet, NULL, &r));

    capffi_token rd = mint(f->ctx, "reader", CAPFFI_RIGHT_READ);
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_view *v = NULL;
    assert_rc(capffi_view_new(&v, f->ctx, &rd, r.p, 0,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_UNBOUNDED),
              CAPFFI_EPERM);
    capffi_token rp =
        mint(f->ctx, "reader+ptr", CAPFFI_RIGHT_READ | CAPFFI_RIGHT_POINTER);
    assert_ok(capffi_view_new(&v, f->ctx, &rp, r.p, 0,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_UNBOUNDED));
    const char *s;
    size_t len;
    assert_ok(capffi_view_cstr(&s, &len, v, 0));
    assert_string_equal(s, "hello from fixture");
    assert_int_equal(len, strlen("hello from fixture"));
    assert_true(capffi_view_len(v) > (size_t)1 << 40);
    /* Audited as unbounded, refused and made. */
    char refused[64], made[64];
    snprintf(refused, sizeof refused, "view.new EPERM %p+unbounded", r.p);
    snprintf(made, sizeof made, "view.new ok %p+unbounded", r.p);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
                  refused, "token.new ok", made);
    /* Writing through an unbounded view also needs WRITE. */
    mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_view_new(&v, f->ctx, &rp, r.p, 0,
                              CAPFFI_VIEW_WRITE | CAPFFI_VIEW_UNBOUNDED),
              CAPFFI_EPERM);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, refused);
}

static void
view_of_buf_pins_the_buffer(void **state)
{
    struct lib_fx *f = *state;
    int released = 0;
    uint16_t mem[4] = { 10, 20, 30, 40 };
    capffi_buf *b;
    assert_ok(
        capffi_buf_wrap(&b, f->ctx, mem, sizeof mem, count_release, &released));
    uint64_t mark = capffi_audit_mark(f->ctx);
    capffi_view *v;
    assert_ok(capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE));
    capffi_view *s;
    assert_ok(capffi_view_sub(&s, v, 4, 4, CAPFFI_VIEW_READ));
    assert_int_equal(capffi_buf_pins(b), 2);
    /* A view's hold is not a pin capffi_buf_unpin could drop. */
    assert_rc(capffi_buf_unpin(b), CAPFFI_EINVAL);
    assert_int_equal(capffi_buf_pins(b), 2);
    capffi_buf_free(b);
    assert_int_equal(released, 0);
    capffi_value y;
    assert_ok(capffi_view_get(&y, v, 6, "u16"));
    assert_int_equal(y.u64, 40);
    capffi_view_free(v);
    assert_ok(capffi_view_get(&y, s, 0, "u16"));
    assert_int_equal(y.u64, 30);
    assert_int_equal(released, 0);
    capffi_view_free(s);
    assert_int_equal(released, 1);
    /* No token, no audit event (a free is not audited either). */
    assert_no_events(f->ctx, mark);
    assert_rc(capffi_view_of_buf(&v, NULL, CAPFFI_VIEW_READ), CAPFFI_EINVAL);
    capffi_buf *c;
    assert_ok(capffi_buf_new(&c, f->ctx, 1));
    assert_rc(capffi_view_of_buf(&v, c, CAPFFI_VIEW_UNBOUNDED | 1),
              CAPFFI_EINVAL);
}

static void *
free_view_elsewhere(void *v)
{
    capffi_view_free(v);
    return NULL;
}

static void
view_free_off_owner_is_refused(void **state)
{
    struct lib_fx *f = *state;
    char mem[4] = "abc";
    capffi_view *v = view(f, mem, sizeof mem, CAPFFI_VIEW_READ);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, free_view_elsewhere, v), 0);
    pthread_join(th, NULL);
    capffi_value y;
    assert_ok(capffi_view_get(&y, v, 1, "u8"));
    assert_int_equal(y.u64, 'b');
    capffi_view_free(v);
}

static void
view_new_survives_every_allocation_failure(void **state)
{
    struct lib_fx *f = *state;
    char mem[4];
    for (long n = 0;; n++) {
        capffi__alloc_fail_after(n);
        capffi_view *v = NULL;
        int rc = capffi_view_new(&v, f->ctx, &f->tok, mem, 4, CAPFFI_VIEW_READ);
        bool failed = capffi__alloc_failed();
        capffi__alloc_fail_after(-1);
        /* A failed copy into the audit recorder does not fail the call. */
        if (rc == CAPFFI_OK) {
            assert_non_null(v);
            capffi_view_free(v);
            if (!failed)
                break;
            continue;
        }
        assert_true(failed);
        assert_rc(rc, CAPFFI_ENOMEM);
        assert_null(v);
    }
}

/* ---- struct results ------------------------------------------------------ */

static void
struct_result_into_buffer_by_field_name(void **state)
{
    struct lib_fx *f = *state;
    assert_ok(capffi_type_define(f->ctx, "Inner", "{ s: i16, d: f64 }"));
    capffi_fn *make = bind(f, "fx_outer_make",
                           "(i8, i16, f64, i32) -> { tag: i8, in: Inner, "
                           "tail: i32 }");
    assert_int_equal(capffi_fn_result_size(make), sizeof(struct fx_outer));
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, capffi_fn_result_size(make)));
    capffi_value a[4] = {
        { .i64 = -3 }, { .i64 = 300 }, { .f64 = 2.5 }, { .i64 = -70000 }
    };
    capffi_value r;
    assert_ok(capffi_buf_data(&r.agg.ptr, &r.agg.len, b));
    assert_ok(capffi_fn_call(make, a, &r));

    capffi_view *v;
    assert_ok(capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ));
    capffi_field fl;
    capffi_value y;
    assert_ok(capffi_fn_result_field(&fl, make, "tag"));
    assert_string_equal(fl.type, "i8");
    assert_ok(capffi_view_get(&y, v, fl.offset, fl.type));
    assert_int_equal(y.i64, -3);
    assert_ok(capffi_fn_result_field(&fl, make, "in.s"));
    assert_int_equal(fl.offset, offsetof(struct fx_outer, in.s));
    assert_ok(capffi_view_get(&y, v, fl.offset, fl.type));
    assert_int_equal(y.i64, 300);
    assert_ok(capffi_fn_result_field(&fl, make, "in.d"));
    assert_int_equal(fl.offset, offsetof(struct fx_outer, in.d));
    assert_ok(capffi_view_get(&y, v, fl.offset, fl.type));
    assert_true(y.f64 == 2.5);
    assert_ok(capffi_fn_result_field(&fl, make, "2"));
    assert_int_equal(fl.offset, offsetof(struct fx_outer, tail));
    assert_ok(capffi_view_get(&y, v, fl.offset, fl.type));
    assert_int_equal(y.i64, -70000);

    /* A nested struct is read with a sub-view. */
    assert_ok(capffi_fn_result_field(&fl, make, "in"));
    assert_string_equal(fl.type, "struct");
    assert_int_equal(fl.size, sizeof(struct fx_inner));
    capffi_view *in;
    assert_ok(capffi_view_sub(&in, v, fl.offset, fl.size, CAPFFI_VIEW_READ));
    assert_ok(capffi_view_get(&y, in, offsetof(struct fx_inner, d), "f64"));
    assert_true(y.f64 == 2.5);
    assert_ok(capffi_fn_result_field(&fl, make, ""));
    assert_int_equal(fl.size, sizeof(struct fx_outer));

    assert_rc(capffi_fn_result_field(&fl, make, "nope"), CAPFFI_ENOTFOUND);
    assert_rc(capffi_fn_result_field(&fl, make, "tag.x"), CAPFFI_ENOTFOUND);
    capffi_fn *add = bind(f, "fx_add_i32", "(i32, i32) -> i32");
    assert_rc(capffi_fn_result_field(&fl, add, "x"), CAPFFI_ETYPE);
    assert_rc(capffi_fn_result_field(NULL, make, "x"), CAPFFI_EINVAL);
    assert_int_equal(capffi_fn_result_size(add), 4);
    assert_int_equal(capffi_fn_result_size(NULL), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, lib_fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(buf_new_is_zeroed_and_empty_passes_null),
        T(buf_pinned_memory_outlives_free),
        T(buf_wrapped_release_waits_for_last_pin),
        T(buf_freed_by_a_handler_waits_for_the_call),
        T(buf_freed_during_a_foreign_call_waits_for_it),
        T(buf_unpin_refuses_unpinned),
        T(buf_double_free_is_recognised),
        T(buf_quarantine_recycles),
        T(buf_lent_is_busy_and_free_waits),
        T(buf_unlend_restores_access),
        T(ptr_needs_pointer_right),
        T(ptr_of_refuses_foreign_buffer),
        T(view_get_set_every_scalar_unaligned),
        T(view_every_offset_around_the_end),
        T(view_refusals_in_a_loop_are_coalesced),
        T(view_access_modes_and_rights),
        T(view_bad_input),
        T(view_cstr_never_reads_past_the_view),
        T(view_revoked_with_its_token),
        T(view_sub_only_shrinks),
        T(view_unbounded_needs_read_and_pointer),
        T(view_of_buf_pins_the_buffer),
        T(view_free_off_owner_is_refused),
        T(view_new_survives_every_allocation_failure),
        T(struct_result_into_buffer_by_field_name),
    };
    return RUN_TESTS("mem", tests);
}
