/*
 * test_security.c - attacks on tokens and path grants, and on SafeFFI
 * instances (suite: security). Each case names the THREATS.md item it
 * defends, or the threat in words.
 */
#include "helpers.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h" /* to read the secret in the leak test */

/* ---- a replayable RNG, so two contexts can draw the same bytes ---------- */

static uint64_t rng_counter;

static void
rng_buf(void *const buf, const size_t size)
{
    unsigned char seed[randombytes_SEEDBYTES] = { 0 };
    memcpy(seed, &rng_counter, sizeof rng_counter);
    rng_counter++;
    randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t
rng_random(void)
{
    uint32_t r;
    rng_buf(&r, sizeof r);
    return r;
}

static const char *
rng_name(void)
{
    return "capffi-test-replay";
}

static struct randombytes_implementation replay_rng = { rng_name, rng_random,
                                                        NULL,     NULL,
                                                        rng_buf,  NULL };

/* Independent of the library's RNG: the attacker's guesses. */
static uint64_t xs = 0x9e3779b97f4a7c15u;

static uint64_t
guess(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return xs;
}

struct fx {
    struct scratch s;
    capffi_ctx *ctx;
    capffi_token tok;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    scratch_make(&f->s);
    f->ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_ok(capffi_token_new(&f->tok, f->ctx, "real", NULL));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    capffi_ctx_free(f->ctx);
    scratch_remove(&f->s);
    free(f);
    return 0;
}

/* A token of f's context with only these rights. */
static capffi_token
with_rights(struct fx *f, const char *label, uint32_t rights)
{
    capffi_scope sc = { .rights = rights, .label = label };
    capffi_token t;
    assert_ok(capffi_token_attenuate(&t, f->ctx, &f->tok, &sc));
    return t;
}

static void
ignore_args(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    (void)ret;
}

/*
 * H3 (measured): a u64 written into a buffer and read back as a pointer
 * made a pointer with no token at all. Every path that makes a pointer
 * value out of memory or out of native code's arguments needs the pointer
 * right: views, statics, callback parameters.
 */
static void
security_no_pointer_without_the_pointer_right(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 256));
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f->ctx, 16));
    capffi_view *v;
    assert_ok(capffi_view_of_buf(&v, b, CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE));
    capffi_value x = { .u64 = 0x7fffdeadbeefULL }, out = { .u64 = 1 };
    assert_ok(capffi_view_set(v, 0, "u64", x));
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_view_get(&out, v, 0, "pointer"), CAPFFI_EPERM);
    assert_null(out.p);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "pointer right"));
    assert_rc(capffi_view_get(&out, v, 0, "function"), CAPFFI_EPERM);
    assert_ok(capffi_view_get(&out, v, 0, "u64")); /* integers still read */
    assert_int_equal(out.u64, x.u64);
    capffi_view *sub;
    assert_ok(capffi_view_sub(&sub, v, 0, 8, CAPFFI_VIEW_READ));
    assert_rc(capffi_view_get(&out, sub, 0, "pointer"), CAPFFI_EPERM);
    capffi_view_free(sub);
    /* Two refusals of v make two events whatever the clock (the second
     * alone or coalesced and flushed), one of sub: exact, in any order. */
    void *base;
    assert_ok(capffi_buf_data(&base, NULL, b));
    char of_v[80], of_sub[80];
    snprintf(of_v, sizeof of_v, "view.access EPERM %p+16 \\[0, +8)", base);
    snprintf(of_sub, sizeof of_sub, "view.access EPERM %p+8 \\[0, +8)", base);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, of_v, of_v, of_sub);
    assert_int_equal(audited(f->ctx, CAPFFI_OP_VIEW_ACCESS, CAPFFI_EPERM), 3);

    /* A token with read but not pointer: the same through its views. */
    capffi_token rd = with_rights(f, "read-only", CAPFFI_RIGHT_READ);
    void *data;
    assert_ok(capffi_buf_data(&data, NULL, b));
    capffi_view *rv;
    assert_ok(capffi_view_new(&rv, f->ctx, &rd, data, 16, CAPFFI_VIEW_READ));
    assert_rc(capffi_view_get(&out, rv, 0, "pointer"), CAPFFI_EPERM);
    capffi_view_free(rv);
    assert_rc(capffi_view_of_buf_tok(&rv, f->ctx, &rd, b, CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    /* Nor may its bounded views reach beyond the memory mapped at the
     * pointer: a length to the end of the address space would be an
     * unbounded view, and offsets would reach any address. */
    assert_rc(
        capffi_view_new(&rv, f->ctx, &rd, data, SIZE_MAX / 2, CAPFFI_VIEW_READ),
        CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(f->ctx), "beyond its mapping"));
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(two != MAP_FAILED);
    assert_ok(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page * 2,
                              CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two + page, (size_t)page), 0);
    assert_rc(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page + 1,
                              CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_ok(
        capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page, CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two, (size_t)page), 0);
    /* Adjacent mappings are other objects: a view never joins them, and a
     * mapping the process may not read (a guard page) is refused. */
    two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(two != MAP_FAILED);
    assert_int_equal(mprotect(two + page, (size_t)page, PROT_NONE), 0);
    assert_rc(capffi_view_new(&rv, f->ctx, &rd, two, (size_t)page * 2,
                              CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_rc(
        capffi_view_new(&rv, f->ctx, &rd, two + page, 8, CAPFFI_VIEW_READ),
        CAPFFI_EPERM);
    assert_int_equal(mprotect(two, (size_t)page, PROT_READ), 0);
    capffi_token rw =
        with_rights(f, "read-write", CAPFFI_RIGHT_READ | CAPFFI_RIGHT_WRITE);
    assert_rc(capffi_view_new(&rv, f->ctx, &rw, two, 8,
                              CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE),
              CAPFFI_EPERM); /* read-only memory is not viewed writable */
    assert_ok(capffi_view_new(&rv, f->ctx, &rw, two, 8, CAPFFI_VIEW_READ));
    capffi_view_free(rv);
    assert_int_equal(munmap(two, (size_t)page * 2), 0);
    /* With the pointer right the length is the host's word. */
    assert_ok(capffi_view_new(&rv, f->ctx, &f->tok, data, SIZE_MAX / 2,
                              CAPFFI_VIEW_READ));
    capffi_view_free(rv);

    /* With the pointer right the address reads back. */
    capffi_view *pv;
    assert_ok(
        capffi_view_of_buf_tok(&pv, f->ctx, &f->tok, b, CAPFFI_VIEW_READ));
    assert_ok(capffi_view_get(&out, pv, 0, "pointer"));
    assert_int_equal((uintptr_t)out.p, (uintptr_t)x.u64);
    capffi_view_free(pv);
    capffi_view_free(v);
    capffi_buf_free(b);

    /* Statics of pointer types: the library's token needs the right. */
    capffi_token dl = with_rights(f, "dlopen-only", CAPFFI_RIGHT_DLOPEN);
    capffi_lib *lib;
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &dl, env_path("CAPFFI_FIXTURE"), 0));
    const char *ptr_types[] = { "pointer", "cstring", "function" };
    for (size_t i = 0; i < 3; i++)
        assert_rc(capffi_lib_static(&out, lib, "fx_name", ptr_types[i]),
                  CAPFFI_EPERM);
    assert_ok(capffi_lib_static(&out, lib, "fx_counter", "i32"));
    capffi_lib_close(lib);
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &f->tok, env_path("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_lib_static(&out, lib, "fx_name", "cstring"));
    assert_string_equal(out.str, "fixture");
    capffi_lib_close(lib);

    /* Callback parameters that would hand the handler an address. */
    capffi_token cbt = with_rights(f, "callback-only", CAPFFI_RIGHT_CALLBACK);
    const char *sigs[] = { "(pointer) -> void", "(i32, cstring) -> void",
                           "(function) -> void", "(buffer) -> void" };
    capffi_cb *cb;
    mark = capffi_audit_mark(f->ctx);
    for (size_t i = 0; i < 4; i++) {
        assert_rc(
            capffi_cb_new(&cb, f->ctx, &cbt, sigs[i], ignore_args, NULL, 0),
            CAPFFI_EPERM);
        assert_null(cb);
    }
    assert_events(
        f->ctx, mark, CAPFFI_EXPECT_ORDERED | CAPFFI_EXPECT_EXACT,
        "cb.new EPERM (pointer) -> void", "cb.new EPERM (i32, cstring) -> void",
        "cb.new EPERM (function) -> void", "cb.new EPERM (buffer) -> void");
    /* Without POINTER, READ and WRITE the token is in safe mode: a raw
     * pointer result is refused too (SafeFFI). */
    mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_cb_new(&cb, f->ctx, &cbt, "(i32) -> pointer", ignore_args,
                            NULL, 0),
              CAPFFI_EPERM);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT,
                  "cb.new EPERM (i32) -> pointer");
    capffi_token cbr = with_rights(f, "callback-read",
                                   CAPFFI_RIGHT_CALLBACK | CAPFFI_RIGHT_READ);
    assert_ok(capffi_cb_new(&cb, f->ctx, &cbr, "(i32) -> pointer", ignore_args,
                            NULL, 0));
    capffi_cb_close(cb);
    assert_ok(capffi_cb_new(&cb, f->ctx, &f->tok, "(pointer) -> void",
                            ignore_args, NULL, 0));
    capffi_cb_close(cb);
}

/*
 * H7 (measured): an untrusted plugin defined a context-wide type name
 * first, and the trusted module's definition then failed, its binds
 * getting the plugin's layout. Names belong to principals.
 */
static void
security_type_names_belong_to_their_principal(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 256));
    capffi_token module, plugin;
    assert_ok(capffi_token_new(&module, f->ctx, "module", NULL));
    assert_ok(capffi_token_new(&plugin, f->ctx, "plugin", NULL));
    /* The host revokes FFI: the context's own names are closed. */
    capffi_perm_state st;
    assert_ok(capffi_perm_revoke(&st, f->ctx, NULL));
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_type_define(f->ctx, "Blob", "{ u64 }"), CAPFFI_EPERM);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "type.define EPERM Blob");
    /* The plugin takes the name first, in its own namespace. */
    assert_ok(capffi_type_define_tok(f->ctx, &plugin, "Blob", "{ u64 }"));
    assert_rc(capffi_type_define_tok(f->ctx, &plugin, "Blob", "{ u8 }"),
              CAPFFI_EINVAL);
    /* The module's definition still succeeds and keeps its meaning. */
    assert_ok(capffi_type_define_tok(f->ctx, &module, "Blob",
                                     "{ a: u64, b: u64, c: u64, d: u64, "
                                     "e: u64, f: u64, g: u64, h: u64 }"));
    size_t size;
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &module, "Blob"));
    assert_int_equal(size, 64);
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &plugin, "Blob"));
    assert_int_equal(size, 8);
    assert_rc(capffi_type_size(&size, NULL, f->ctx, "Blob"), CAPFFI_ESIG);
    size_t off;
    assert_ok(capffi_type_offset_tok(&off, f->ctx, &module, "Blob", "h"));
    assert_int_equal(off, 56);
    assert_rc(capffi_type_offset_tok(&off, f->ctx, &plugin, "Blob", "h"),
              CAPFFI_ENOTFOUND);
    capffi_field fld;
    assert_ok(capffi_type_field_tok(&fld, f->ctx, &module, "Blob", "b"));
    assert_int_equal(fld.offset, 8);
    assert_string_equal(fld.type, "u64");

    /* Binds and callbacks see their own token's names, and its
     * ancestors': a child of the module sees the module's Blob. */
    capffi_lib *lib;
    assert_ok(
        capffi_lib_open(&lib, f->ctx, &module, env_path("CAPFFI_FIXTURE"), 0));
    capffi_fn *fn;
    assert_ok(capffi_lib_bind(&fn, lib, "fx_nop", "(Blob) -> void", 0));
    size_t psize;
    capffi_fn_param_type(fn, 0, &psize);
    assert_int_equal(psize, 64);
    capffi_fn_free(fn);
    capffi_lib_close(lib);
    capffi_token child;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &module, NULL));
    assert_ok(capffi_type_size_tok(&size, NULL, f->ctx, &child, "Blob"));
    assert_int_equal(size, 64);
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f->ctx, &plugin, "(Blob) -> void", ignore_args,
                            NULL, 0));
    assert_int_equal(capffi_cb_arity(cb), 1);
    capffi_cb_param_type(cb, 0, &psize);
    assert_int_equal(psize, 8);
    capffi_cb_close(cb);
}

/* T1: none of 10^5 forged tokens verifies. */
static void
security_forged_tokens_never_verify(void **state)
{
    struct fx *f = *state;
    size_t tried = 0, accepted = 0;
    capffi_token t;
    /* Random ids and tags. */
    for (int i = 0; i < 60000; i++, tried++) {
        t.id = guess();
        uint64_t g[2] = { guess(), guess() };
        memcpy(t.tag, g, 16);
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    /* Sequential ids around the real one and from 0, with the real tag
     * and with a zero tag. */
    for (uint64_t k = 0; k < 20000; k++) {
        t = f->tok;
        t.id = f->tok.id + k + 1;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        t.id = f->tok.id - k - 1;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        memset(&t, 0, sizeof t);
        t.id = k;
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
        tried += 3;
    }
    /* The real id with every single bit of the tag flipped, and with
     * random tags. */
    for (int bit = 0; bit < 128; bit++, tried++) {
        t = f->tok;
        t.tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    for (int i = 0; i < 1000; i++, tried++) {
        t = f->tok;
        uint64_t g[2] = { guess(), guess() };
        memcpy(t.tag, g, 16);
        accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    }
    /* A forged token with a path learns nothing about the path. */
    t = f->tok;
    t.tag[7] ^= 4;
    assert_rc(capffi_token_check(f->ctx, &t, CAPFFI_RIGHT_DLOPEN,
                                 "/nonexistent/secret/lib.so"),
              CAPFFI_ETOKEN);
    /* The all-zero token. */
    memset(&t, 0, sizeof t);
    accepted += capffi_token_check(f->ctx, &t, 0, NULL) != CAPFFI_ETOKEN;
    tried++;
    assert_true(tried >= 100000);
    assert_int_equal(accepted, 0);
    /* The real token still works, and forgeries are audited as such. */
    assert_ok(capffi_token_check(f->ctx, &f->tok, 0, NULL));
    assert_ok(capffi_audit_record(f->ctx, 8));
    uint64_t mark = capffi_audit_mark(f->ctx);
    t = f->tok;
    t.tag[15] ^= 0x80;
    assert_rc(capffi_token_check(f->ctx, &t, 0, NULL), CAPFFI_ETOKEN);
    assert_events(f->ctx, mark, CAPFFI_EXPECT_EXACT, "token.check ETOKEN");
    /* The reason is a field no pattern names. */
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, f->ctx, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FORGED);
}

/* T2: a token of context A is refused in B, reported as foreign. */
static void
security_token_is_bound_to_its_context(void **state)
{
    struct fx *f = *state;
    capffi_ctx *b = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tb;
    assert_ok(capffi_token_new(&tb, b, "b", NULL));
    assert_ok(capffi_audit_record(b, 8));
    uint64_t mark = capffi_audit_mark(b);
    assert_rc(capffi_token_check(b, &f->tok, 0, NULL), CAPFFI_ETOKEN);
    assert_non_null(strstr(capffi_ctx_errmsg(b), "another context"));
    assert_events(b, mark, CAPFFI_EXPECT_EXACT, "token.check ETOKEN");
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, b, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FOREIGN);
    assert_rc(capffi_token_check(f->ctx, &tb, 0, NULL), CAPFFI_ETOKEN);
    assert_rc(capffi_token_revoke(b, &f->tok), CAPFFI_ETOKEN);
    capffi_token x;
    assert_rc(capffi_token_attenuate(&x, b, &f->tok, NULL), CAPFFI_ETOKEN);
    assert_ok(capffi_token_check(f->ctx, &f->tok, 0, NULL));
    capffi_ctx_free(b);
}

/* T2: even when two contexts draw identical random bytes (same secret,
 * same token id), a token of one is refused by the other. */
static void
security_same_id_in_two_contexts(void **state)
{
    (void)state;
    rng_counter = 1000;
    capffi_ctx *a = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token ta;
    assert_ok(capffi_token_new(&ta, a, "same", NULL));
    rng_counter = 1000;
    capffi_ctx *b = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token tb;
    assert_ok(capffi_token_new(&tb, b, "same", NULL));
    assert_true(ta.id == tb.id); /* the RNG really did repeat */
    assert_memory_not_equal(ta.tag, tb.tag, 16);
    assert_rc(capffi_token_check(b, &ta, 0, NULL), CAPFFI_ETOKEN);
    assert_rc(capffi_token_check(a, &tb, 0, NULL), CAPFFI_ETOKEN);
    assert_ok(capffi_token_check(a, &ta, 0, NULL));
    assert_ok(capffi_token_check(b, &tb, 0, NULL));
    capffi_ctx_free(a);
    /* A's token, A gone: still refused by B, now as forged. */
    assert_ok(capffi_audit_record(b, 8));
    uint64_t mark = capffi_audit_mark(b);
    assert_rc(capffi_token_check(b, &ta, 0, NULL), CAPFFI_ETOKEN);
    assert_events(b, mark, CAPFFI_EXPECT_EXACT, "token.check ETOKEN");
    capffi_event ev;
    assert_ok(capffi_audit_get(&ev, b, 0));
    assert_int_equal(ev.reason, CAPFFI_REASON_FORGED);
    assert_ok(capffi_token_check(b, &tb, 0, NULL));
    capffi_ctx_free(b);
}

/* T3: stale tokens. */
static void
security_stale_tokens_are_refused(void **state)
{
    struct fx *f = *state;
    capffi_scope sc;
    capffi_token once, brief, gone;
    memset(&sc, 0, sizeof sc);
    sc.max_uses = 1;
    assert_ok(capffi_token_attenuate(&once, f->ctx, &f->tok, &sc));
    assert_ok(capffi_token_check(f->ctx, &once, 0, NULL));
    assert_rc(capffi_token_check(f->ctx, &once, 0, NULL), CAPFFI_EREVOKED);
    memset(&sc, 0, sizeof sc);
    sc.ttl_ms = 1;
    assert_ok(capffi_token_attenuate(&brief, f->ctx, &f->tok, &sc));
    usleep(5000);
    assert_rc(capffi_token_check(f->ctx, &brief, 0, NULL), CAPFFI_EREVOKED);
    assert_ok(capffi_token_attenuate(&gone, f->ctx, &f->tok, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &gone));
    assert_rc(capffi_token_check(f->ctx, &gone, 0, NULL), CAPFFI_EREVOKED);
    /* A token of a context that has been freed. */
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    capffi_token dead;
    assert_ok(capffi_token_new(&dead, other, "dead", NULL));
    capffi_ctx_free(other);
    assert_rc(capffi_token_check(f->ctx, &dead, 0, NULL), CAPFFI_ETOKEN);
}

/* T4: a child never does more than its parent, nor outlives it. */
static void
security_children_never_widen_or_outlive(void **state)
{
    struct fx *f = *state;
    capffi_scope sc;
    capffi_token narrow, child, grandchild;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_attenuate(&narrow, f->ctx, &f->tok, &sc));
    for (uint32_t r = 1; r <= CAPFFI_RIGHTS_ALL; r++) {
        sc.rights = r;
        int rc = capffi_token_attenuate(&child, f->ctx, &narrow, &sc);
        assert_int_equal(rc, r == CAPFFI_RIGHT_READ ? 0 : CAPFFI_EPERM);
    }
    memset(&sc, 0, sizeof sc);
    assert_ok(capffi_token_attenuate(&child, f->ctx, &narrow, &sc));
    assert_ok(capffi_token_attenuate(&grandchild, f->ctx, &child, &sc));
    assert_ok(capffi_token_revoke(f->ctx, &narrow));
    assert_rc(capffi_token_check(f->ctx, &grandchild, CAPFFI_RIGHT_READ, NULL),
              CAPFFI_EREVOKED);
    capffi_token again;
    assert_rc(capffi_token_attenuate(&again, f->ctx, &grandchild, NULL),
              CAPFFI_EREVOKED);
}

/* T5: every public function that takes a token refuses a forged one and
 * (where it uses the token) a revoked one. Later modules add rows. */
struct row {
    const char *name;
    int (*call)(capffi_ctx *ctx, const capffi_token *t);
    int on_revoked;
};

static int
call_check(capffi_ctx *ctx, const capffi_token *t)
{
    return capffi_token_check(ctx, t, 0, NULL);
}

static int
call_attenuate(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_token out;
    return capffi_token_attenuate(&out, ctx, t, NULL);
}

static int
call_revoke(capffi_ctx *ctx, const capffi_token *t)
{
    return capffi_token_revoke(ctx, t);
}

static int
call_info(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_token_desc d;
    return capffi_token_info(&d, ctx, t);
}

static int
call_lib_open(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, t, "libz.so.1", 0);
    capffi_lib_close(lib);
    return rc;
}

static int
call_lib_open_process(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_lib *lib = NULL;
    int rc = capffi_lib_open(&lib, ctx, t, NULL, 0);
    capffi_lib_close(lib);
    return rc;
}

static void
any_code(void)
{
}

static int
call_fn_from_ptr(capffi_ctx *ctx, const capffi_token *t)
{
    void (*fp)(void) = any_code;
    void *code;
    memcpy(&code, &fp, sizeof code);
    capffi_fn *fn = NULL;
    int rc = capffi_fn_from_ptr(&fn, ctx, t, code, "() -> void", 0);
    capffi_fn_free(fn);
    return rc;
}

static int
call_ptr_of(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, ctx, 8));
    void *p = NULL;
    int rc = capffi_ptr_of(&p, ctx, t, b);
    if (!rc)
        assert_ok(capffi_buf_unpin(b));
    capffi_buf_free(b);
    return rc;
}

static int
call_ptr_from_addr(capffi_ctx *ctx, const capffi_token *t)
{
    void *p;
    return capffi_ptr_from_addr(&p, ctx, t, 0x1000);
}

static int
call_view_new(capffi_ctx *ctx, const capffi_token *t)
{
    static char mem[8];
    capffi_view *v = NULL;
    int rc = capffi_view_new(&v, ctx, t, mem, sizeof mem, CAPFFI_VIEW_READ);
    capffi_view_free(v);
    return rc;
}

static int
call_view_of_buf_tok(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, ctx, 8));
    capffi_view *v = NULL;
    int rc = capffi_view_of_buf_tok(&v, ctx, t, b, CAPFFI_VIEW_READ);
    capffi_view_free(v);
    capffi_buf_free(b);
    return rc;
}

static int
call_type_define_tok(capffi_ctx *ctx, const capffi_token *t)
{
    static unsigned n;
    char name[32];
    snprintf(name, sizeof name, "T5_%u", n++);
    return capffi_type_define_tok(ctx, t, name, "{ i32 }");
}

static int
call_type_size_tok(capffi_ctx *ctx, const capffi_token *t)
{
    size_t size;
    return capffi_type_size_tok(&size, NULL, ctx, t, "i32");
}

static int
call_type_offset_tok(capffi_ctx *ctx, const capffi_token *t)
{
    size_t off;
    return capffi_type_offset_tok(&off, ctx, t, "{ a: u8, b: u32 }", "b");
}

static void
no_op_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)payload;
    (void)args;
    (void)ret;
}

static int
call_cb_new(capffi_ctx *ctx, const capffi_token *t)
{
    capffi_cb *cb = NULL;
    int rc = capffi_cb_new(&cb, ctx, t, "() -> void", no_op_handler, NULL, 0);
    capffi_cb_close(cb);
    return rc;
}

static void
security_every_token_taking_function_verifies(void **state)
{
    struct fx *f = *state;
    static const struct row rows[] = {
        { "capffi_token_check", call_check, CAPFFI_EREVOKED },
        { "capffi_token_attenuate", call_attenuate, CAPFFI_EREVOKED },
        { "capffi_token_revoke", call_revoke, CAPFFI_OK }, /* idempotent */
        { "capffi_token_info", call_info, CAPFFI_OK },     /* diagnostics */
        { "capffi_lib_open", call_lib_open, CAPFFI_EREVOKED },
        { "capffi_lib_open(NULL)", call_lib_open_process, CAPFFI_EREVOKED },
        { "capffi_fn_from_ptr", call_fn_from_ptr, CAPFFI_EREVOKED },
        { "capffi_ptr_of", call_ptr_of, CAPFFI_EREVOKED },
        { "capffi_ptr_from_addr", call_ptr_from_addr, CAPFFI_EREVOKED },
        { "capffi_view_new", call_view_new, CAPFFI_EREVOKED },
        { "capffi_cb_new", call_cb_new, CAPFFI_EREVOKED },
        { "capffi_view_of_buf_tok", call_view_of_buf_tok, CAPFFI_EREVOKED },
        { "capffi_type_define_tok", call_type_define_tok, CAPFFI_EREVOKED },
        { "capffi_type_size_tok", call_type_size_tok, CAPFFI_EREVOKED },
        { "capffi_type_offset_tok", call_type_offset_tok, CAPFFI_EREVOKED },
    };
    capffi_token revoked;
    assert_ok(capffi_token_attenuate(&revoked, f->ctx, &f->tok, NULL));
    assert_ok(capffi_token_revoke(f->ctx, &revoked));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        capffi_token forged = f->tok;
        forged.tag[3] ^= 0x10;
        int rc = rows[i].call(f->ctx, &forged);
        if (rc != CAPFFI_ETOKEN)
            fail_msg("%s accepted a forged token (%s)", rows[i].name,
                     capffi_err_name(rc));
        rc = rows[i].call(f->ctx, &revoked);
        if (rc != rows[i].on_revoked)
            fail_msg("%s on a revoked token: %s", rows[i].name,
                     capffi_err_name(rc));
        rc = rows[i].call(f->ctx, NULL);
        if (rc != CAPFFI_EINVAL)
            fail_msg("%s accepted a NULL token", rows[i].name);
    }
    /* ...and each works with the genuine token, so no row passes by
     * failing for another reason. */
    assert_ok(call_lib_open(f->ctx, &f->tok));
    assert_ok(call_lib_open_process(f->ctx, &f->tok));
    assert_ok(call_fn_from_ptr(f->ctx, &f->tok));
    assert_ok(call_ptr_of(f->ctx, &f->tok));
    assert_ok(call_ptr_from_addr(f->ctx, &f->tok));
    assert_ok(call_view_new(f->ctx, &f->tok));
    assert_ok(call_cb_new(f->ctx, &f->tok));
    assert_ok(call_check(f->ctx, &f->tok));
    assert_ok(call_attenuate(f->ctx, &f->tok));
    assert_ok(call_info(f->ctx, &f->tok));
}

/* T6: no message or event ever holds a tag or the secret. */
struct capture {
    char text[1 << 16];
    size_t len;
};

static void
capture_sink(void *payload, const capffi_event *ev)
{
    struct capture *c = payload;
    size_t n =
        capffi_audit_format_json(c->text + c->len, sizeof c->text - c->len, ev);
    c->len += n < sizeof c->text - c->len ? n : 0;
}

static void
append(struct capture *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len + n < sizeof c->text) {
        memcpy(c->text + c->len, s, n);
        c->len += n;
    }
}

static bool
contains_bytes(const struct capture *c, const uint8_t *b, size_t n)
{
    char hex[2 * 32 + 1];
    sodium_bin2hex(hex, sizeof hex, b, n);
    for (size_t i = 0; i + n <= c->len; i++)
        if (memcmp(c->text + i, b, n) == 0)
            return true;
    /* Hex in either case, and any 8-byte window of it. */
    for (size_t w = 0; w + 16 <= 2 * n; w += 2)
        for (size_t i = 0; i + 16 <= c->len; i++)
            if (strncasecmp(c->text + i, hex + w, 16) == 0)
                return true;
    return false;
}

static void
security_tags_and_secret_never_leak(void **state)
{
    struct fx *f = *state;
    static struct capture cap;
    memset(&cap, 0, sizeof cap);
    assert_ok(capffi_audit_set_sink(f->ctx, capture_sink, &cap));
    capffi_token child, bad;
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_READ;
    assert_ok(capffi_token_attenuate(&child, f->ctx, &f->tok, &sc));
    append(&cap, capffi_ctx_errmsg(f->ctx));
    bad = child;
    bad.tag[0] ^= 1;
    assert_rc(capffi_token_check(f->ctx, &bad, 0, NULL), CAPFFI_ETOKEN);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    assert_rc(capffi_token_check(f->ctx, &child, CAPFFI_RIGHT_WRITE, f->s.a),
              CAPFFI_EPERM);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    assert_ok(capffi_token_revoke(f->ctx, &child));
    assert_rc(capffi_token_check(f->ctx, &child, 0, NULL), CAPFFI_EREVOKED);
    append(&cap, capffi_ctx_errmsg(f->ctx));
    capffi_ctx *other = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, NULL);
    assert_rc(capffi_token_check(other, &f->tok, 0, NULL), CAPFFI_ETOKEN);
    append(&cap, capffi_ctx_errmsg(other));
    capffi_ctx_free(other);
    capffi_audit_set_sink(f->ctx, NULL, NULL);
    assert_true(cap.len > 200); /* the events really were captured */

    assert_false(contains_bytes(&cap, f->tok.tag, 16));
    assert_false(contains_bytes(&cap, child.tag, 16));
    assert_false(contains_bytes(&cap, bad.tag, 16));
    uint8_t secret[crypto_generichash_KEYBYTES];
    sodium_mprotect_readonly(capffi__tok_of(f->ctx)->secret);
    memcpy(secret, capffi__tok_of(f->ctx)->secret, sizeof secret);
    sodium_mprotect_noaccess(capffi__tok_of(f->ctx)->secret);
    assert_false(contains_bytes(&cap, secret, sizeof secret));
    sodium_memzero(secret, sizeof secret);
}

/* T6: the secret is unreadable at rest (a stray read faults). */
static void
security_secret_is_no_access_at_rest(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka traps SIGSEGV; the child wants the default: to die. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile unsigned char c = capffi__tok_of(f->ctx)->secret[0];
        (void)c;
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

/* T8: after fork the child has a copy; revocation does not cross. */
static void
security_fork_copies_contexts(void **state)
{
    struct fx *f = *state;
    capffi_token c;
    assert_ok(capffi_token_attenuate(&c, f->ctx, &f->tok, NULL));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = capffi_token_check(f->ctx, &c, 0, NULL) == 0 &&
                 capffi_token_revoke(f->ctx, &f->tok) == 0 &&
                 capffi_token_check(f->ctx, &c, 0, NULL) == CAPFFI_EREVOKED;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_ok(capffi_token_check(f->ctx, &c, 0, NULL));
}

/* L4, L7, L8 at the token level. */
static void
security_token_paths_by_identity(void **state)
{
    struct fx *f = *state;
    const char *deny[] = { f->s.a, NULL };
    capffi_ctx *ctx = ctx_with(CAPFFI_OPT_ALLOW_ALL, NULL, deny);
    capffi_token t;
    assert_ok(capffi_token_new(&t, ctx, "all", NULL));
    char spelled[PATH_MAX];
    pathf(spelled, "%s/./other/../lib//a.so", f->s.dir);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, spelled),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.link_a),
              CAPFFI_EPERM);
    assert_non_null(strstr(capffi_ctx_errmsg(ctx), "denied"));
    assert_ok(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, f->s.b));
    /* Pseudo file systems: not covered by "all". */
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/dev/zero"),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, "/proc/cpuinfo"),
              CAPFFI_EPERM);
    /* A memfd reached through /proc/self/fd names no file. */
    int mfd = memfd_create("lib", 0);
    assert_true(mfd >= 0);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", mfd);
    assert_true(capffi_token_check(ctx, &t, CAPFFI_RIGHT_DLOPEN, fdpath) != 0);
    close(mfd);
    /* A file swapped in under the granted name is another file. */
    const char *only_b[] = { f->s.b, NULL };
    capffi_ctx *narrow = ctx_with(0, only_b, NULL);
    capffi_token nb;
    assert_ok(capffi_token_new(&nb, narrow, "b", NULL));
    assert_int_equal(unlink(f->s.b), 0);
    assert_int_equal(symlink(f->s.c, f->s.b), 0);
    assert_rc(capffi_token_check(narrow, &nb, CAPFFI_RIGHT_DLOPEN, f->s.b),
              CAPFFI_EPERM);
    capffi_ctx_free(narrow);
    capffi_ctx_free(ctx);
}

/* ---- SafeFFI: instances ------------------------------------------------- */

#define WAIT_MS 10000 /* a bound on every wait: a hang fails the case */

/* The fixture's record as these cases declare it (struct fx_rec). */
#define REC_LAYOUT "{ id: i32, score: f64, name: [16]u8, next: ?*u8 }"

/*
 * What the SafeFFI cases start from: a context with the given flags and
 * workers that allows the fixture, an audit recorder, a token of every
 * right the context grants, the fixture opened twice (lib, and aux for the
 * fixture's counters and gate: it stays open when a case closes lib), the
 * class Rec, the fixture's free count at 0 and its gate shut.
 */
struct sfx {
    capffi_ctx *ctx;
    capffi_token tok;
    capffi_lib *lib, *aux;
};

static void
aux_void(struct sfx *f, const char *sym)
{
    capffi_fn *fn = bind_sym(f->aux, sym, "() -> void");
    assert_ok(capffi_fn_call(fn, NULL, NULL));
    capffi_fn_free(fn);
}

static int32_t
aux_i32(struct sfx *f, const char *sym)
{
    capffi_fn *fn = bind_sym(f->aux, sym, "() -> i32");
    capffi_value r;
    assert_ok(capffi_fn_call(fn, NULL, &r));
    capffi_fn_free(fn);
    return (int32_t)r.i64;
}

static void
sfx_open(struct sfx *f, uint32_t flags, unsigned workers)
{
    f->ctx = ctx_for_fixtures(flags, workers);
    assert_ok(capffi_audit_record(f->ctx, 256));
    assert_ok(capffi_token_new(&f->tok, f->ctx, "safeffi", NULL));
    assert_ok(capffi_lib_open(&f->lib, f->ctx, &f->tok,
                              env_path("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_lib_open(&f->aux, f->ctx, &f->tok,
                              env_path("CAPFFI_FIXTURE"), 0));
    assert_ok(capffi_type_define(f->ctx, "Rec", REC_LAYOUT));
    aux_void(f, "fx_rec_reset");
    aux_void(f, "fx_gate_close");
}

static void
sfx_close(struct sfx *f)
{
    aux_void(f, "fx_gate_open"); /* no call of a failed case stays there */
    capffi_ctx_free(f->ctx);
}

/*
 * The fixture's free count seen from a context of its own, which keeps
 * the fixture loaded (and its count) after the case's context is freed:
 * what the case's context released when it was freed.
 */
struct watch {
    capffi_ctx *ctx;
    capffi_fn *frees;
};

static void
watch_open(struct watch *w)
{
    const char *allow[] = { env_path("CAPFFI_FIXTURE_DIR"), NULL };
    w->ctx = ctx_with(0, allow, NULL);
    capffi_token t;
    assert_ok(capffi_token_new(&t, w->ctx, "watch", NULL));
    capffi_lib *lib;
    assert_ok(capffi_lib_open(&lib, w->ctx, &t, env_path("CAPFFI_FIXTURE"), 0));
    w->frees = bind_sym(lib, "fx_rec_frees", "() -> i32");
}

static int32_t
watch_frees(struct watch *w)
{
    capffi_value r;
    assert_ok(capffi_fn_call(w->frees, NULL, &r));
    return (int32_t)r.i64;
}

static capffi_obj *
new_obj(struct sfx *f, const char *cls)
{
    capffi_obj *o = NULL;
    int rc = capffi_obj_new(&o, f->ctx, cls);
    if (rc)
        fail_msg("capffi_obj_new %s: %s: %s", cls, capffi_err_name(rc),
                 capffi_ctx_errmsg(f->ctx));
    return o;
}

/* The record fx_rec_new(id) makes, as an owned instance of Rec. */
static capffi_obj *
owned_rec(struct sfx *f, int32_t id)
{
    capffi_fn *mk =
        bind_sym(f->lib, "fx_rec_new", "(i32) -> own *Rec by fx_rec_free");
    capffi_value a = { .i64 = id }, r = { .obj = NULL };
    assert_ok(capffi_fn_call(mk, &a, &r));
    assert_non_null(r.obj);
    capffi_fn_free(mk);
    return r.obj;
}

static int64_t
get_i64(const capffi_obj *o, const char *path)
{
    capffi_value v;
    int rc = capffi_obj_get(&v, o, path);
    if (rc)
        fail_msg("capffi_obj_get %s: %s", path, capffi_err_name(rc));
    return v.i64;
}

/* Wait until n calls are at the fixture's gate. */
static void
gate_reached(struct sfx *f, int32_t n)
{
    for (int i = 0; i < WAIT_MS && aux_i32(f, "fx_gate_inside") < n; i++)
        usleep(1000);
    assert_int_equal(aux_i32(f, "fx_gate_inside"), n);
}

/*
 * H2 (measured): a `*NAME` field was set to a host instance, the instance
 * was freed, and the field, read back, gave a live instance over the freed
 * bytes (read and written after the free). A field holds what it points
 * to: the host's bytes, or an owned instance's native object (whose
 * destructor waits), until the field lets go.
 */
static void
security_obj_field_holds_the_instance_it_points_to(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    assert_ok(capffi_type_define(f.ctx, "Leaf", "{ v: i64 }"));
    assert_ok(capffi_type_define(f.ctx, "Holder",
                                 "{ leaf: *Leaf, rec: *Rec, n: i32 }"));
    capffi_obj *h = new_obj(&f, "Holder");
    capffi_obj *leaf = new_obj(&f, "Leaf");
    assert_ok(
        capffi_obj_set(leaf, "v", (capffi_value){ .i64 = 0x4141414141414141 }));
    assert_ok(capffi_obj_set(h, "leaf", (capffi_value){ .obj = leaf }));
    capffi_obj_free(leaf);
    assert_rc(capffi_obj_status(leaf), CAPFFI_EINVAL); /* freed for the host */
    capffi_value v = { .obj = NULL };
    assert_ok(capffi_obj_get(&v, h, "leaf"));
    assert_non_null(v.obj);
    assert_int_equal(get_i64(v.obj, "v"), 0x4141414141414141);
    assert_ok(capffi_obj_set(v.obj, "v", (capffi_value){ .i64 = 7 }));
    assert_int_equal(get_i64(v.obj, "v"), 7);
    capffi_obj_free(v.obj);

    /* An owned target: its destructor waits for the field. */
    capffi_obj *r = owned_rec(&f, 3);
    assert_ok(capffi_obj_set(h, "rec", (capffi_value){ .obj = r }));
    capffi_obj_free(r);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 0);
    assert_ok(capffi_obj_get(&v, h, "rec"));
    assert_int_equal(get_i64(v.obj, "id"), 3);
    capffi_obj_free(v.obj);
    /* The field lets go when it is written... */
    assert_ok(capffi_obj_set(h, "rec", (capffi_value){ .obj = NULL }));
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 1);
    /* ...or when its instance is freed. */
    r = owned_rec(&f, 4);
    assert_ok(capffi_obj_set(h, "rec", (capffi_value){ .obj = r }));
    capffi_obj_free(r);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 1);
    capffi_obj_free(h);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 2);
    assert_int_equal(capffi_ctx_leaks(f.ctx), 0);
    sfx_close(&f);
}

/*
 * H2: an instance read from a `*NAME` field is a view into memory its
 * parent's field keeps alive; were the parent freed first, the field's
 * hold would end and the view would read freed memory. The view holds
 * its parent.
 */
static void
security_obj_read_from_a_field_holds_its_parent(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    assert_ok(capffi_type_define(f.ctx, "Leaf", "{ v: i64 }"));
    assert_ok(
        capffi_type_define(f.ctx, "Holder", "{ leaf: *Leaf, rec: *Rec }"));
    capffi_obj *h = new_obj(&f, "Holder");
    capffi_obj *leaf = new_obj(&f, "Leaf");
    assert_ok(capffi_obj_set(leaf, "v", (capffi_value){ .i64 = 99 }));
    assert_ok(capffi_obj_set(h, "leaf", (capffi_value){ .obj = leaf }));
    capffi_obj *r = owned_rec(&f, 5);
    assert_ok(capffi_obj_set(h, "rec", (capffi_value){ .obj = r }));
    capffi_value lv, rv;
    assert_ok(capffi_obj_get(&lv, h, "leaf"));
    assert_ok(capffi_obj_get(&rv, h, "rec"));
    /* Everything the host named is freed; only the two views remain. */
    capffi_obj_free(leaf);
    capffi_obj_free(r);
    capffi_obj_free(h);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 0);
    assert_int_equal(get_i64(lv.obj, "v"), 99);
    assert_int_equal(get_i64(rv.obj, "id"), 5);
    capffi_obj_free(lv.obj);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 0);
    assert_int_equal(get_i64(rv.obj, "id"), 5);
    capffi_obj_free(rv.obj);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 1);
    sfx_close(&f);
}

/* A handler that closes the library whose function is running. */
static void
close_lib_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    (void)args;
    (void)ret;
    capffi_lib_close(payload);
}

/*
 * H2: capffi_lib_close ran the destructor of an owned instance a running
 * call still held (here closed from a handler inside that call): the
 * native function then wrote into the freed object. An instance a call
 * holds is released when the context is freed, not at the close.
 */
static void
security_lib_close_spares_an_instance_a_call_holds(void **state)
{
    (void)state;
    struct watch w;
    watch_open(&w);
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    int32_t frees0 = watch_frees(&w);
    capffi_fn *open = bind_sym(f.lib, "fx_rec_open",
                               "(i32, out own *Rec by fx_rec_free) -> i32");
    capffi_fn *fill =
        bind_sym(f.lib, "fx_fill_after", "(function, *Rec, usize, u8) -> void");
    capffi_value rec = { .obj = NULL }, a[2] = { { .i64 = 5 }, { .p = &rec } },
                 r;
    assert_ok(capffi_fn_call(open, a, &r));
    assert_non_null(rec.obj);
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f.ctx, &f.tok, "() -> void", close_lib_handler,
                            f.lib, 0));
    /* fx_fill_after calls the handler, then writes 8 bytes of 0x41. */
    capffi_value fa[4] = {
        { .cb = cb }, { .obj = rec.obj }, { .u64 = 8 }, { .u64 = 0x41 }
    };
    assert_ok(capffi_fn_call(fill, fa, NULL));
    assert_int_equal(cb_status(cb).failures, 0);
    assert_int_equal(watch_frees(&w), frees0); /* not at the close */
    assert_rc(capffi_obj_status(rec.obj), CAPFFI_ECLOSED);
    capffi_obj_free(rec.obj);
    assert_int_equal(watch_frees(&w), frees0);
    capffi_cb_close(cb);
    sfx_close(&f);
    assert_int_equal(watch_frees(&w), frees0 + 1); /* once, at the end */
    capffi_ctx_free(w.ctx);
}

/*
 * H2: capffi_lib_close ran the destructor of an owned instance lent to a
 * nonblocking call still queued: the job then read the freed object. A
 * lent instance is released when the context is freed.
 */
static void
security_lib_close_spares_an_instance_lent_to_a_job(void **state)
{
    (void)state;
    struct watch w;
    watch_open(&w);
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 1);
    int32_t frees0 = watch_frees(&w);
    capffi_fn *open = bind_sym(f.lib, "fx_rec_open",
                               "(i32, out own *Rec by fx_rec_free) -> i32");
    capffi_fn *gate = bind_sym(f.aux, "fx_gate_wait", "(i32, i32) -> i32");
    capffi_fn *sum = bind_sym(f.aux, "fx_rec_sum", "(*Rec) -> i64");
    capffi_value rec = { .obj = NULL }, a[2] = { { .i64 = 5 }, { .p = &rec } },
                 r;
    assert_ok(capffi_fn_call(open, a, &r));
    /* The only worker waits at the gate: the job that reads rec queues. */
    capffi_job *j0, *j1;
    capffi_value g[2] = { { .i64 = 1 }, { .i64 = WAIT_MS } };
    assert_ok(capffi_fn_call_async(&j0, gate, g));
    gate_reached(&f, 1);
    capffi_value s[1] = { { .obj = rec.obj } };
    assert_ok(capffi_fn_call_async(&j1, sum, s));
    assert_rc(capffi_obj_status(rec.obj), CAPFFI_EBUSY);
    capffi_lib_close(f.lib);
    assert_int_equal(watch_frees(&w), frees0); /* not at the close */
    aux_void(&f, "fx_gate_open");
    assert_ok(capffi_job_wait(&r, j0, WAIT_MS));
    assert_int_equal(r.i64, 1);
    assert_ok(capffi_job_wait(&r, j1, WAIT_MS));
    assert_int_equal(r.i64, 5 + 7); /* id 5, score 7.5: read intact */
    capffi_job_free(j0);
    capffi_job_free(j1);
    assert_int_equal(watch_frees(&w), frees0);
    capffi_obj_free(rec.obj);
    sfx_close(&f);
    assert_int_equal(watch_frees(&w), frees0 + 1); /* once, at the end */
    capffi_ctx_free(w.ctx);
}

/* ---- a free racing a call on another thread ------------------------------ */

struct free_race {
    capffi_fn *sum;
    _Atomic(capffi_obj *) cur;
    atomic_int phase; /* 0 idle, 1 published, 2 called, 3 stop */
    int rc;           /* the call's */
};

/* Pass each published instance to one call, as soon as it is published. */
static void *
race_caller(void *arg)
{
    struct free_race *fr = arg;
    for (;;) {
        int ph;
        for (unsigned spin = 0; (ph = atomic_load(&fr->phase)) != 1 && ph != 3;
             spin++)
            if (spin > 1000)
                sched_yield();
        if (ph == 3)
            return NULL;
        capffi_value a = { .obj = atomic_load(&fr->cur) }, r;
        fr->rc = capffi_fn_call(fr->sum, &a, &r);
        atomic_store(&fr->phase, 2);
    }
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * H2 (measured): the owner freed an instance while another thread passed
 * it to a call. The free claimed the instance for burial, then marked it
 * freeing again, so the call's end claimed it a second time: buried twice,
 * its struct freed twice (a double free under AddressSanitizer, a corrupt
 * heap without). Exactly one party buries. Each round the caller thread
 * passes a new instance to a call as the owner frees it; the owner's
 * delay follows the outcome, so the free keeps landing where the call
 * takes the instance (a few thousand rounds; 20000 at most, or 10 s).
 */
static void
security_obj_free_racing_a_call_buries_once(void **state)
{
    (void)state;
    long live0 = capffi__alloc_live();
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    struct free_race fr = { .sum = bind_sym(f.lib, "fx_rec_sum",
                                            "(*Rec) -> i64") };
    atomic_init(&fr.cur, NULL);
    atomic_init(&fr.phase, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_caller, &fr), 0);
    double end = now_s() + 10;
    long i = 0, delay = 0, ran = 0;
    for (; i < 20000 && (i & 255 || now_s() < end); i++) {
        capffi_obj *o = new_obj(&f, "Rec");
        atomic_store(&fr.cur, o);
        atomic_store(&fr.phase, 1);
        for (volatile long k = 0; k < delay; k++)
            ;
        capffi_obj_free(o);
        for (unsigned spin = 0; atomic_load(&fr.phase) != 2; spin++)
            if (spin > 1000)
                sched_yield();
        atomic_store(&fr.phase, 0);
        /* Free later when the call was refused, sooner when it ran: the
         * delay stays where the two meet. */
        long step = 1 + delay / 64;
        ran += fr.rc == CAPFFI_OK;
        delay = fr.rc != CAPFFI_OK ? delay + step
                : delay > step     ? delay - step
                                   : 0;
    }
    atomic_store(&fr.phase, 3);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(i >= 256);
    assert_true(ran > 0); /* some calls took the instance before its free */
    capffi_ctx_poll(f.ctx, 0); /* burials queued by the caller's thread */
    assert_int_equal(capffi_ctx_leaks(f.ctx), 0);
    sfx_close(&f);
    /* Everything the context allocated was freed exactly once. */
    assert_int_equal(capffi__alloc_live(), live0);
}

/* ---- callbacks' instances ------------------------------------------------ */

struct lend_try {
    capffi_ctx *ctx;
    capffi_fn *gate;
    int rc;
    char msg[256];
    capffi_job *job;
    int rows;
};

/* Try to lend the row's values (the invocation's instance) to a job. */
static void
lend_row_handler(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct lend_try *t = payload;
    t->rows++;
    capffi_value a[3] = { { .i64 = 5 }, { .i64 = 0 }, { .obj = args[2].obj } };
    t->rc = capffi_fn_call_async(&t->job, t->gate, a);
    snprintf(t->msg, sizeof t->msg, "%s", capffi_ctx_errmsg(t->ctx));
    if (t->rc == CAPFFI_OK) { /* were it taken, it ends in this frame */
        capffi_value r;
        capffi_job_wait(&r, t->job, WAIT_MS);
        capffi_job_free(t->job);
    }
    ret->i64 = 1; /* one row is enough */
}

/*
 * H2 (measured): a callback's `*NAME` argument (memory of the invocation,
 * gone when the handler returns) was lent to a nonblocking call made in
 * the handler; the job outlived the frame and read and wrote it. A
 * callback's argument is never lent.
 */
static void
security_callback_argument_is_not_lent_to_a_job(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 1);
    struct lend_try t = { .ctx = f.ctx, .rc = -1 };
    /* fx_gate_wait(v, ms) with a third argument it ignores. */
    t.gate = bind_sym(f.aux, "fx_gate_wait", "(i32, i32, *[2]cstring) -> i32");
    capffi_cb *cb;
    assert_ok(capffi_cb_new(&cb, f.ctx, &f.tok,
                            "(?*u8, i32, *[$1]cstring, *[$1]cstring) -> i32",
                            lend_row_handler, &t, 0));
    capffi_fn *rows = bind_sym(f.lib, "fx_rows", "(function, ?*u8) -> i32");
    capffi_value a[2] = { { .cb = cb }, { .obj = NULL } }, r;
    assert_ok(capffi_fn_call(rows, a, &r));
    assert_int_equal(t.rows, 1);
    assert_int_equal(t.rc, CAPFFI_ETYPE);
    if (!strstr(t.msg, "callback's argument"))
        fail_msg("refusal: '%s'", t.msg);
    capffi_cb_close(cb);
    sfx_close(&f);
}

/* ---- safe mode ----------------------------------------------------------- */

/*
 * H3 (measured): a context in safe mode still handed out raw addresses
 * through a token that has the pointer right: a `pointer` static,
 * capffi_lib_symbol, capffi_fn_from_ptr (any address made callable) and
 * capffi_view_of_buf_tok (pointers read out of a buffer). Safe mode
 * refuses them all, whatever the token.
 */
static void
security_safe_context_gives_no_raw_address(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    capffi_token_desc d;
    assert_ok(capffi_token_info(&d, f.ctx, &f.tok));
    assert_true(d.rights & CAPFFI_RIGHT_POINTER);
    assert_true(d.rights & CAPFFI_RIGHT_FNPTR);
    capffi_value v = { .u64 = 1 };
    const char *ptr_types[] = { "pointer", "cstring", "function" };
    for (size_t i = 0; i < 3; i++)
        assert_rc(capffi_lib_static(&v, f.lib, "fx_name", ptr_types[i]),
                  CAPFFI_EPERM);
    assert_ok(capffi_lib_static(&v, f.lib, "fx_counter", "i32"));
    void *p = &v;
    assert_rc(capffi_lib_symbol(&p, f.lib, "fx_counter"), CAPFFI_EPERM);
    assert_null(p);
    void (*fp)(void) = any_code;
    void *code;
    memcpy(&code, &fp, sizeof code);
    capffi_fn *fn = NULL;
    uint64_t mark = capffi_audit_mark(f.ctx);
    assert_rc(capffi_fn_from_ptr(&fn, f.ctx, &f.tok, code, "() -> void", 0),
              CAPFFI_EPERM);
    assert_null(fn);
    char refused[64];
    snprintf(refused, sizeof refused, "fn.from_ptr EPERM %p", code);
    assert_events(f.ctx, mark, CAPFFI_EXPECT_EXACT, refused);
    capffi_buf *b;
    assert_ok(capffi_buf_new(&b, f.ctx, 16));
    capffi_view *view = NULL;
    assert_rc(capffi_view_of_buf_tok(&view, f.ctx, &f.tok, b, CAPFFI_VIEW_READ),
              CAPFFI_EPERM);
    assert_null(view);
    capffi_buf_free(b);
    sfx_close(&f);
}

/*
 * H3: a copy of an accessor is the host's data; one damaged (its offset
 * moved past the instance, or its operation changed) read and wrote
 * outside the instance. Every access checks the accessor's bytes against
 * the instance's size.
 */
static void
security_damaged_accessor_stays_inside_its_instance(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    capffi_obj *o = new_obj(&f, "[4]u8");
    capffi_accessor good, acc;
    assert_ok(capffi_obj_accessor(&good, o, "[0]"));
    capffi_value v;
    const size_t offsets[] = { 4, 5, 64, 4096, SIZE_MAX };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        acc = good;
        acc.offset = offsets[i];
        assert_rc(capffi_obj_read(&v, o, &acc), CAPFFI_EBOUNDS);
        assert_rc(capffi_obj_write(o, &acc, (capffi_value){ .u64 = 0x41 }),
                  CAPFFI_EBOUNDS);
    }
    acc = good;
    acc.offset = 3; /* the last element: still inside */
    assert_ok(capffi_obj_write(o, &acc, (capffi_value){ .u64 = 9 }));
    assert_int_equal(get_i64(o, "[3]"), 9);
    capffi_obj_free(o);

    /* A 4-byte field moved to straddle the end, or read as 8 bytes. */
    assert_ok(capffi_type_define(f.ctx, "Pair", "{ a: i32, b: i32 }"));
    o = new_obj(&f, "Pair");
    assert_ok(capffi_obj_accessor(&good, o, "b"));
    acc = good;
    acc.offset = 6;
    assert_rc(capffi_obj_read(&v, o, &acc), CAPFFI_EBOUNDS);
    assert_rc(capffi_obj_write(o, &acc, (capffi_value){ .i64 = 1 }),
              CAPFFI_EBOUNDS);
    capffi_accessor wide;
    assert_ok(capffi_type_define(f.ctx, "Wide", "{ a: i32, b: i64 }"));
    capffi_obj *w = new_obj(&f, "Wide");
    assert_ok(capffi_obj_accessor(&wide, w, "b"));
    acc = good;
    acc.op = wide.op; /* Pair's b (at 4) read as 8 bytes */
    assert_rc(capffi_obj_read(&v, o, &acc), CAPFFI_EBOUNDS);
    acc.op = 0xff;
    assert_true(capffi_obj_read(&v, o, &acc) != CAPFFI_OK);
    assert_ok(capffi_obj_read(&v, o, &good));
    capffi_obj_free(w);
    capffi_obj_free(o);
    sfx_close(&f);
}

/*
 * H3 (measured): a struct passed by value with a `cstring` field was
 * accepted in safe mode: its bytes are the host's, so any integer became
 * an address that native code read. A cstring field, at any depth, is
 * refused as pointer, *NAME and function fields are.
 */
static void
security_safe_mode_refuses_cstring_fields_by_value(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    const char *sigs[] = {
        "({ s: cstring }) -> usize",
        "({ n: i32, in: { s: cstring } }) -> usize",
        "({ s: [2]cstring }) -> usize",
        "() -> { s: cstring }",
        "({ p: pointer }) -> usize",
        "({ r: *Rec }) -> usize",
        "({ f: function }) -> usize",
    };
    capffi_fn *fn;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        fn = NULL;
        int rc = capffi_lib_bind(&fn, f.lib, "fx_strlen", sigs[i], 0);
        if (rc != CAPFFI_EPERM)
            fail_msg("bind %s in safe mode: %s", sigs[i], capffi_err_name(rc));
        assert_null(fn);
    }
    capffi_cb *cb = NULL;
    assert_rc(capffi_cb_new(&cb, f.ctx, &f.tok, "({ s: cstring }) -> void",
                            ignore_args, NULL, 0),
              CAPFFI_EPERM);
    assert_null(cb);
    /* Integers in the same place are not addresses. */
    assert_ok(capffi_lib_bind(&fn, f.lib, "fx_pair_sum",
                              "({ a: i32, b: i32 }) -> i32", 0));
    capffi_fn_free(fn);
    sfx_close(&f);
}

static void *
close_on_thread(void *lib)
{
    capffi_lib_close(lib);
    return NULL;
}

/*
 * Threads: capffi_lib_close had no owner-thread check; from another thread
 * it walked the context's instances and ran destructors there, racing the
 * owner. It is refused there (CAPFFI_ETHREAD, audited) and changes
 * nothing.
 */
static void
security_lib_close_off_the_owner_thread_changes_nothing(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    capffi_obj *rec = owned_rec(&f, 1);
    uint64_t mark = capffi_audit_mark(f.ctx);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, close_on_thread, f.lib), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_events(f.ctx, mark, CAPFFI_EXPECT_EXACT,
                  "lib.close ETHREAD capffi_lib_close");
    assert_ok(capffi_obj_status(rec));
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 0);
    capffi_fn *sum = bind_sym(f.lib, "fx_rec_sum", "(*Rec) -> i64");
    capffi_value a = { .obj = rec }, r;
    assert_ok(capffi_fn_call(sum, &a, &r));
    assert_int_equal(r.i64, 1 + 1); /* id 1, score 1.5 */
    /* On the owner thread the close does its work. */
    capffi_lib_close(f.lib);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 1);
    assert_rc(capffi_obj_status(rec), CAPFFI_ECLOSED);
    capffi_obj_free(rec);
    assert_int_equal(aux_i32(&f, "fx_rec_frees"), 1);
    sfx_close(&f);
}

/*
 * Resource exhaustion (measured): capffi_obj_new of an unnamed struct
 * expression parsed it into the context's type arena on every call, never
 * reclaimed before capffi_ctx_free: new/free pairs grew memory without
 * bound. Instances are of named classes, scalars, or arrays of them.
 */
static void
security_obj_new_takes_only_named_classes(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, 0, 0);
    const char *unnamed[] = { "{ a: i32 }", "[64]{ a: i32, b: [8]u8 }",
                              "[2]{ a: i32 }" };
    for (size_t i = 0; i < 3; i++) {
        capffi_obj *o = (capffi_obj *)&f; /* a refusal sets NULL */
        int rc = capffi_obj_new(&o, f.ctx, unnamed[i]);
        if (rc != CAPFFI_ETYPE)
            fail_msg("capffi_obj_new %s: %s", unnamed[i], capffi_err_name(rc));
        assert_null(o);
    }
    assert_ok(capffi_type_define(f.ctx, "Cell", "{ a: i32, b: [8]u8 }"));
    capffi_obj *o = new_obj(&f, "[64]Cell");
    capffi_obj_free(o);
    o = new_obj(&f, "[8]i32");
    capffi_obj_free(o);
    sfx_close(&f);
}

/* ---- the signature and path languages ------------------------------------ */

/*
 * Ownership confusion: `own` on a plain parameter would have capffi call
 * a destructor on memory the host still owns; `out *[N]X` and
 * `out *[$k]X` promise an array the callee never fills. All are
 * malformed (CAPFFI_ESIG).
 */
static void
security_sig_refuses_own_arguments_and_out_arrays(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, 0, 0);
    assert_ok(capffi_type_define(f.ctx, "In", "{ x: i32, s: [4]u8 }"));
    const char *bad[] = {
        "(own *In by fx_rec_free) -> void",
        "(own ?*In by fx_rec_free) -> void",
        "(out *[$1]In, i32) -> void",
        "(out *[2]In) -> void",
        "(out own *[2]In by fx_rec_free) -> void",
    };
    capffi_fn *fn;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fn = NULL;
        int rc = capffi_lib_bind(&fn, f.lib, "fx_nop", bad[i], 0);
        if (rc != CAPFFI_ESIG)
            fail_msg("bind %s: %s", bad[i], capffi_err_name(rc));
        assert_null(fn);
    }
    const char *good[] = {
        "(out own *In by fx_rec_free) -> void",
        "() -> own *In by fx_rec_free",
        "(out *In) -> void",
        "(*[$1]In, i32) -> void",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fn = NULL;
        int rc = capffi_lib_bind(&fn, f.lib, "fx_nop", good[i], 0);
        if (rc != CAPFFI_OK)
            fail_msg("bind %s: %s: %s", good[i], capffi_err_name(rc),
                     capffi_ctx_errmsg(f.ctx));
        capffi_fn_free(fn);
    }
    sfx_close(&f);
}

/*
 * Path confusion: "ins[1]s" read ins[1].s, so a path the host checked
 * as one field named another. After ']' a path goes on only with '.' or
 * '['.
 */
static void
security_path_goes_on_after_an_index_only_with_a_separator(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, 0, 0);
    assert_ok(capffi_type_define(f.ctx, "In", "{ x: i32, s: [4]u8 }"));
    assert_ok(capffi_type_define(f.ctx, "T",
                                 "{ str: [50]u8, m: [3][4]i16, ins: [2]In }"));
    capffi_obj *o = new_obj(&f, "T");
    const char *bad[] = { "ins[1]s", "ins[1]x", "ins[0]s[1]", "str[3]]",
                          "m[1]x" };
    capffi_value v;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int g = capffi_obj_get(&v, o, bad[i]);
        int s = capffi_obj_set(o, bad[i], (capffi_value){ .i64 = 1 });
        int l = capffi_obj_len(&n, o, bad[i]);
        if (g != CAPFFI_ENOTFOUND || s != CAPFFI_ENOTFOUND ||
            l != CAPFFI_ENOTFOUND)
            fail_msg("path %s: get %s, set %s, len %s", bad[i],
                     capffi_err_name(g), capffi_err_name(s),
                     capffi_err_name(l));
    }
    capffi_accessor acc;
    assert_rc(capffi_obj_accessor(&acc, o, "ins[1]x"), CAPFFI_ENOTFOUND);
    /* The same with the separators. */
    assert_ok(capffi_obj_set(o, "ins[1].x", (capffi_value){ .i64 = 6 }));
    assert_int_equal(get_i64(o, "ins[1].x"), 6);
    assert_ok(capffi_obj_len(&n, o, "ins[1].s"));
    assert_int_equal(n, 4);
    assert_ok(capffi_obj_set(o, "m[2][3]", (capffi_value){ .i64 = -2 }));
    assert_int_equal(get_i64(o, "m[2][3]"), -2);
    capffi_obj_free(o);
    sfx_close(&f);
}

/*
 * H2 on a list: a class may point to itself (`next: *Node`), and a list
 * of host instances linked through it is walked and freed in any order:
 * each field holds the next node, each node read from a field holds the
 * one it was read from, so no walk reads a freed node.
 */
static void
security_self_linked_list_frees_in_any_order(void **state)
{
    (void)state;
    struct sfx f;
    sfx_open(&f, CAPFFI_OPT_SAFE, 0);
    assert_ok(capffi_type_define(f.ctx, "Node", "{ v: i64, next: *Node }"));
    enum { N = 6 };
    static const int free_order[N] = { 3, 1, 5, 0, 4, 2 };
    for (int round = 0; round < 3; round++) {
        capffi_obj *node[N], *walk[N] = { NULL };
        for (int i = 0; i < N; i++) {
            node[i] = new_obj(&f, "Node");
            assert_ok(
                capffi_obj_set(node[i], "v", (capffi_value){ .i64 = i * 10 }));
        }
        for (int i = 0; i + 1 < N; i++)
            assert_ok(capffi_obj_set(node[i], "next",
                                     (capffi_value){ .obj = node[i + 1] }));
        if (round == 0) {
            /* Every node but the head freed, then the walk. */
            for (int k = 0; k < N; k++)
                if (free_order[k] != 0)
                    capffi_obj_free(node[free_order[k]]);
        }
        walk[0] = node[0];
        for (int i = 1; i < N; i++) {
            capffi_value nx = { .obj = NULL };
            assert_ok(capffi_obj_get(&nx, walk[i - 1], "next"));
            assert_non_null(nx.obj);
            walk[i] = nx.obj;
            assert_int_equal(get_i64(walk[i], "v"), i * 10);
        }
        capffi_value last;
        assert_ok(capffi_obj_get(&last, walk[N - 1], "next"));
        assert_null(last.obj);
        if (round == 1) {
            /* The nodes freed while the walk holds views into them. */
            for (int k = 0; k < N; k++)
                capffi_obj_free(node[free_order[k]]);
        }
        if (round == 2) {
            /* The views freed first, in the scrambled order. */
            for (int k = 0; k < N; k++)
                if (free_order[k] != 0)
                    capffi_obj_free(walk[free_order[k]]);
            for (int k = 0; k < N; k++)
                capffi_obj_free(node[free_order[k]]);
            continue;
        }
        for (int i = N - 1; i >= 1; i--)
            assert_int_equal(get_i64(walk[i], "v"), i * 10);
        for (int k = 0; k < N; k++)
            if (free_order[k] != 0)
                capffi_obj_free(walk[free_order[k]]);
        if (round == 0)
            capffi_obj_free(node[0]);
    }
    assert_int_equal(capffi_ctx_leaks(f.ctx), 0);
    sfx_close(&f);
}

/*
 * A refused token learns nothing of where a name leads, not even through
 * the trail (which a script may read): lib.open and token.check name the
 * path as given when the token itself is refused, before the path is
 * looked at. link-a leads to lib/a.so; a forged token, a revoked one and
 * one without the dlopen right must see "link-a", never "lib/a.so".
 */
static void
security_refused_token_learns_no_path(void **state)
{
    struct fx *f = *state;
    assert_ok(capffi_audit_record(f->ctx, 64));
    capffi_token forged = f->tok, gone, noright;
    forged.tag[3] ^= 0x10;
    assert_ok(capffi_token_new(&gone, f->ctx, "gone", NULL));
    assert_ok(capffi_token_revoke(f->ctx, &gone));
    capffi_scope sc;
    memset(&sc, 0, sizeof sc);
    sc.rights = CAPFFI_RIGHT_CALLBACK;
    assert_ok(capffi_token_attenuate(&noright, f->ctx, &f->tok, &sc));
    capffi_lib *lib = NULL;
    uint64_t mark = capffi_audit_mark(f->ctx);
    assert_rc(capffi_lib_open(&lib, f->ctx, &forged, f->s.link_a, 0),
              CAPFFI_ETOKEN);
    assert_rc(capffi_lib_open(&lib, f->ctx, &gone, f->s.link_a, 0),
              CAPFFI_EREVOKED);
    assert_rc(capffi_lib_open(&lib, f->ctx, &noright, f->s.link_a, 0),
              CAPFFI_EPERM);
    assert_rc(capffi_token_check(f->ctx, &forged, 0, f->s.link_a),
              CAPFFI_ETOKEN);
    assert_null(lib);
    capffi_audit_filter flt = CAPFFI_AUDIT_FILTER_ALL;
    flt.since = mark;
    capffi_event ev;
    size_t pos = 0, n = 0;
    while (capffi_audit_next(&ev, f->ctx, &flt, &pos) == CAPFFI_OK) {
        n++;
        assert_string_equal(ev.target, f->s.link_a);
        assert_null(strstr(ev.detail, "lib/a.so"));
    }
    assert_int_equal(n, 4);
}

int
main(void)
{
    /* Must precede sodium_init, which capffi_ctx_new calls. */
    randombytes_set_implementation(&replay_rng);
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(security_no_pointer_without_the_pointer_right),
        T(security_refused_token_learns_no_path),
        T(security_type_names_belong_to_their_principal),
        T(security_forged_tokens_never_verify),
        T(security_token_is_bound_to_its_context),
        T(security_same_id_in_two_contexts),
        T(security_stale_tokens_are_refused),
        T(security_children_never_widen_or_outlive),
        T(security_every_token_taking_function_verifies),
        T(security_tags_and_secret_never_leak),
        T(security_secret_is_no_access_at_rest),
        T(security_fork_copies_contexts),
        T(security_token_paths_by_identity),
#undef T
        cmocka_unit_test(security_obj_field_holds_the_instance_it_points_to),
        cmocka_unit_test(security_obj_read_from_a_field_holds_its_parent),
        cmocka_unit_test(security_lib_close_spares_an_instance_a_call_holds),
        cmocka_unit_test(security_lib_close_spares_an_instance_lent_to_a_job),
        cmocka_unit_test(security_obj_free_racing_a_call_buries_once),
        cmocka_unit_test(security_callback_argument_is_not_lent_to_a_job),
        cmocka_unit_test(security_safe_context_gives_no_raw_address),
        cmocka_unit_test(security_damaged_accessor_stays_inside_its_instance),
        cmocka_unit_test(security_safe_mode_refuses_cstring_fields_by_value),
        cmocka_unit_test(
            security_lib_close_off_the_owner_thread_changes_nothing),
        cmocka_unit_test(security_obj_new_takes_only_named_classes),
        cmocka_unit_test(security_sig_refuses_own_arguments_and_out_arrays),
        cmocka_unit_test(
            security_path_goes_on_after_an_index_only_with_a_separator),
        cmocka_unit_test(security_self_linked_list_frees_in_any_order),
    };
    return RUN_TESTS("security", tests);
}
