/*
 * loop_libuv.c - capffi in a libuv loop: capffi_ctx_fd watched by a
 * uv_poll_t, whose callback runs capffi_ctx_poll.
 *
 * 1. A thread-safe callback is called N_CALLS times from a thread the
 *    host did not write the code of (here a pthread that calls the code
 *    pointer, as a native library's worker would). Each invocation is
 *    queued to the owner thread and its handler runs in the loop.
 * 2. M_JOBS nonblocking calls of libm's pow (capffi_fn_call_async_opts):
 *    each completion handler runs in the loop too.
 * 3. The loop runs until capffi_ctx_keepalive is 0: the callback's
 *    reference is dropped once its last call has arrived, and every job
 *    has ended. Every handler must have run on the loop's thread, once.
 *
 * docs/embedding.md ("Your own event loop") is the guide that goes with
 * it; examples/loop_glib.c is the same program with GLib.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h uses POSIX types */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capffi.h>
#include <uv.h>

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_) {                                                             \
            fprintf(stderr, "%s: %s: %s\n", #call, capffi_err_name(rc_),       \
                    capffi_ctx_errmsg(ctx));                                   \
            return 1;                                                          \
        }                                                                      \
    } while (0)

#define N_CALLS 64
#define M_JOBS 16
/* The most the example waits for its work, in milliseconds. */
#define DEADLINE_MS 10000

/* What the loop delivered, all of it touched on the loop's thread only. */
struct state {
    capffi_ctx *ctx;
    capffi_cb *cb;
    pthread_t loop_thread;
    uv_poll_t watcher;
    unsigned calls[N_CALLS];  /* handler runs per argument */
    unsigned done[M_JOBS];    /* completions per job */
    unsigned n_calls, n_done; /* totals */
    unsigned off_loop;        /* handlers that ran on another thread */
    unsigned bad;             /* wrong arguments or results */
    int referenced;           /* the callback still holds its reference */
};

/* One job's payload. */
struct job_arg {
    struct state *st;
    unsigned i;
};

static void
on_loop_thread(struct state *st)
{
    if (!pthread_equal(pthread_self(), st->loop_thread))
        st->off_loop++;
}

/* The thread-safe callback's handler, (i32) -> i32: runs in
 * capffi_ctx_poll, so on the loop's thread, while the calling thread
 * waits for the result. */
static void
square(void *payload, const capffi_value *args, capffi_value *ret)
{
    struct state *st = payload;
    on_loop_thread(st);
    int64_t i = args[0].i64;
    if (i < 0 || i >= N_CALLS) {
        st->bad++;
        capffi_cb_fail("argument out of range");
        return;
    }
    st->calls[i]++;
    st->n_calls++;
    ret->i64 = i * i;
}

/* A job's completion handler: also in capffi_ctx_poll. */
static void
powered(void *payload, capffi_job *job)
{
    struct job_arg *ja = payload;
    struct state *st = ja->st;
    on_loop_thread(st);
    capffi_value r = { .f64 = 0 };
    int rc = capffi_job_wait(&r, job, 0); /* ended: the result, at once */
    if (rc != CAPFFI_OK || r.f64 != (double)(1u << ja->i))
        st->bad++;
    st->done[ja->i]++;
    st->n_done++;
    capffi_job_free(job);
}

/* The uv_poll_t callback: capffi_ctx_fd is readable, run what is queued.
 * Once the last expected call has arrived the callback's reference is
 * dropped; when nothing keeps the context alive, the watcher stops and
 * uv_run returns. */
static void
ready(uv_poll_t *watcher, int status, int events)
{
    struct state *st = watcher->data;
    (void)events; /* UV_READABLE: the only event asked for */
    if (status < 0) {
        fprintf(stderr, "uv_poll: %s\n", uv_strerror(status));
        st->bad++;
        uv_close((uv_handle_t *)watcher, NULL);
        return;
    }
    int rc = capffi_ctx_poll(st->ctx, 0);
    if (rc != CAPFFI_OK && rc != CAPFFI_ETIMEDOUT) {
        fprintf(stderr, "capffi_ctx_poll: %s\n", capffi_err_name(rc));
        st->bad++;
    }
    if (st->referenced && st->n_calls == N_CALLS) {
        capffi_cb_unref(NULL, st->cb);
        st->referenced = 0;
    }
    if (capffi_ctx_keepalive(st->ctx) == 0)
        uv_close((uv_handle_t *)watcher, NULL);
}

/* The bound on the wait: reached only if something was never delivered. */
static void
deadline(uv_timer_t *timer)
{
    (void)timer;
    fprintf(stderr, "not everything arrived within %d ms\n", DEADLINE_MS);
    exit(1);
}

/* What a native library's thread does with the code pointer it was
 * given: call it, and use the results. */
struct caller {
    int32_t (*fn)(int32_t);
    unsigned wrong;
};

static void *
call_from_thread(void *arg)
{
    struct caller *c = arg;
    for (int32_t i = 0; i < N_CALLS; i++)
        if (c->fn(i) != i * i)
            c->wrong++;
    return NULL;
}

int
main(void)
{
    static struct state st;
    st.loop_thread = pthread_self();

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    capffi_ctx *ctx = NULL;
    if (capffi_ctx_new(&ctx, &opts)) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }
    st.ctx = ctx;
    capffi_token tok;
    CHECK(capffi_token_new(&tok, ctx, "loop", NULL));

    /* The loop first: what arrives before it runs waits in the queue,
     * and capffi_ctx_fd stays readable until capffi_ctx_poll runs it. */
    uv_loop_t loop;
    uv_timer_t timer;
    if (uv_loop_init(&loop) != 0)
        return 1;
    st.watcher.data = &st;
    if (uv_poll_init(&loop, &st.watcher, capffi_ctx_fd(ctx)) != 0 ||
        uv_poll_start(&st.watcher, UV_READABLE, ready) != 0)
        return 1;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, deadline, DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&timer); /* the bound keeps nothing alive */

    /* 1. A thread-safe callback, referenced so the loop waits for it. */
    CHECK(capffi_cb_new(&st.cb, ctx, &tok, "(i32) -> i32", square, &st,
                        CAPFFI_CB_THREADSAFE));
    CHECK(capffi_cb_ref(NULL, st.cb));
    st.referenced = 1;
    struct caller caller = { NULL, 0 };
    void *code = capffi_cb_code(st.cb);
    memcpy(&caller.fn, &code, sizeof code);
    pthread_t thread;
    if (pthread_create(&thread, NULL, call_from_thread, &caller) != 0)
        return 1;

    /* 2. Nonblocking calls: pow(2, i) on the context's workers. */
    capffi_lib *libm;
    capffi_fn *pow_fn;
    CHECK(capffi_lib_open(&libm, ctx, &tok, "libm.so.6", 0));
    CHECK(capffi_lib_bind(&pow_fn, libm, "pow", "(f64, f64) -> f64", 0));
    struct job_arg jargs[M_JOBS];
    for (unsigned i = 0; i < M_JOBS; i++) {
        capffi_value a[2];
        a[0].f64 = 2.0;
        a[1].f64 = (double)i;
        jargs[i].st = &st;
        jargs[i].i = i;
        capffi_job_options jo;
        memset(&jo, 0, sizeof jo);
        jo.done = powered;
        jo.payload = &jargs[i];
        capffi_job *job; /* freed by its handler */
        CHECK(capffi_fn_call_async_opts(&job, pow_fn, a, &jo));
    }

    /* 3. Run the loop until nothing keeps the context alive. */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* runs the close */
    if (uv_loop_close(&loop) != 0)
        return 1;
    pthread_join(thread, NULL);

    unsigned twice = 0, missing = 0;
    for (unsigned i = 0; i < N_CALLS; i++) {
        missing += st.calls[i] == 0;
        twice += st.calls[i] > 1;
    }
    for (unsigned i = 0; i < M_JOBS; i++) {
        missing += st.done[i] == 0;
        twice += st.done[i] > 1;
    }
    printf("libuv %s: %u calls from another thread, %u completions\n",
           uv_version_string(), st.n_calls, st.n_done);
    printf("on the loop's thread: %s; missing: %u; twice: %u; wrong: %u\n",
           st.off_loop ? "NO" : "all", missing, twice, st.bad + caller.wrong);

    capffi_cb_close(st.cb);
    capffi_fn_free(pow_fn);
    capffi_lib_close(libm);
    capffi_ctx_free(ctx);
    return (st.off_loop || missing || twice || st.bad || caller.wrong) ? 1 : 0;
}
