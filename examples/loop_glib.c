/*
 * loop_glib.c - capffi in a GLib main loop: a GSource that watches
 * capffi_ctx_fd (g_source_add_unix_fd) and runs capffi_ctx_poll when it
 * is dispatched.
 *
 * 1. A thread-safe callback is called N_CALLS times from a thread the
 *    host did not write the code of (here a pthread that calls the code
 *    pointer, as a native library's worker would). Each invocation is
 *    queued to the owner thread and its handler runs in the main loop.
 * 2. M_JOBS nonblocking calls of libz's crc32 on capffi buffers
 *    (capffi_fn_call_async_opts): each completion handler runs in the
 *    main loop too, and each buffer comes back to the host there.
 * 3. The loop runs until capffi_ctx_keepalive is 0: the callback's
 *    reference is dropped once its last call has arrived, and every job
 *    has ended. Every handler must have run on the loop's thread, once,
 *    and each job's checksum must be the one a plain call gives.
 *
 * docs/embedding.md ("Your own event loop") is the guide that goes with
 * it; examples/loop_libuv.c is the same program with libuv.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capffi.h>
#include <glib.h>

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
#define BUF_LEN 4096u
/* The most the example waits for its work, in seconds. */
#define DEADLINE_S 10

/*
 * A GSource for a capffi context: dispatched when capffi_ctx_fd is
 * readable, it runs what is queued with capffi_ctx_poll(ctx, 0), then the
 * source's callback (g_source_set_callback), if any, which says whether
 * the source stays.
 */
typedef struct capffi_gsource {
    GSource base;
    capffi_ctx *ctx;
} capffi_gsource;

static gboolean
capffi_gsource_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
    capffi_gsource *s = (capffi_gsource *)source;
    int rc = capffi_ctx_poll(s->ctx, 0);
    if (rc != CAPFFI_OK && rc != CAPFFI_ETIMEDOUT)
        g_warning("capffi_ctx_poll: %s", capffi_err_name(rc));
    return callback ? callback(data) : G_SOURCE_CONTINUE;
}

static GSourceFuncs capffi_gsource_funcs = {
    NULL, NULL, capffi_gsource_dispatch, NULL, NULL, NULL,
};

/* A new source for ctx, not yet attached. Ownership: the caller's
 * reference (g_source_unref). Destroy it before freeing ctx. */
static GSource *
capffi_gsource_new(capffi_ctx *ctx)
{
    GSource *source =
        g_source_new(&capffi_gsource_funcs, sizeof(capffi_gsource));
    ((capffi_gsource *)source)->ctx = ctx;
    g_source_add_unix_fd(source, capffi_ctx_fd(ctx), G_IO_IN);
    g_source_set_name(source, "capffi");
    return source;
}

/* What the loop delivered, all of it touched on the loop's thread only. */
struct state {
    capffi_ctx *ctx;
    capffi_cb *cb;
    GMainLoop *loop;
    pthread_t loop_thread;
    unsigned calls[N_CALLS];  /* handler runs per argument */
    unsigned done[M_JOBS];    /* completions per job */
    uint32_t sums[M_JOBS];    /* each job's crc32 */
    unsigned n_calls, n_done; /* totals */
    unsigned off_loop;        /* handlers that ran on another thread */
    unsigned bad;             /* wrong arguments or statuses */
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
summed(void *payload, capffi_job *job)
{
    struct job_arg *ja = payload;
    struct state *st = ja->st;
    on_loop_thread(st);
    capffi_value r = { .u64 = 0 };
    if (capffi_job_wait(&r, job, 0) != CAPFFI_OK) /* ended: at once */
        st->bad++;
    st->sums[ja->i] = (uint32_t)r.u64;
    st->done[ja->i]++;
    st->n_done++;
    capffi_job_free(job);
}

/* The source's callback, after each capffi_ctx_poll: once the last
 * expected call has arrived the callback's reference is dropped; when
 * nothing keeps the context alive, the loop quits. */
static gboolean
after_poll(gpointer data)
{
    struct state *st = data;
    if (st->referenced && st->n_calls == N_CALLS) {
        capffi_cb_unref(NULL, st->cb);
        st->referenced = 0;
    }
    if (capffi_ctx_keepalive(st->ctx) > 0)
        return G_SOURCE_CONTINUE;
    g_main_loop_quit(st->loop);
    return G_SOURCE_REMOVE;
}

/* The bound on the wait: reached only if something was never delivered. */
static gboolean
deadline(gpointer data)
{
    (void)data;
    fprintf(stderr, "not everything arrived within %d s\n", DEADLINE_S);
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
    st.loop = g_main_loop_new(NULL, FALSE);
    GSource *source = capffi_gsource_new(ctx);
    g_source_set_callback(source, after_poll, &st, NULL);
    g_source_attach(source, NULL);
    guint bound = g_timeout_add_seconds(DEADLINE_S, deadline, NULL);

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

    /* 2. Nonblocking calls: crc32 of a buffer each, on the workers. */
    capffi_lib *z;
    capffi_fn *crc32;
    CHECK(capffi_lib_open(&z, ctx, &tok, "libz.so.1", 0));
    CHECK(capffi_lib_bind(&crc32, z, "crc32", "(u64, buffer, u32) -> u64", 0));
    capffi_buf *bufs[M_JOBS];
    struct job_arg jargs[M_JOBS];
    for (unsigned i = 0; i < M_JOBS; i++) {
        void *p;
        CHECK(capffi_buf_new(&bufs[i], ctx, BUF_LEN));
        CHECK(capffi_buf_data(&p, NULL, bufs[i]));
        for (unsigned k = 0; k < BUF_LEN; k++)
            ((unsigned char *)p)[k] = (unsigned char)(i * 31u + k);
        capffi_value a[3];
        a[0].u64 = 0;
        a[1].buf = bufs[i]; /* lent to the job until it ends */
        a[2].u64 = BUF_LEN;
        jargs[i].st = &st;
        jargs[i].i = i;
        capffi_job_options jo;
        memset(&jo, 0, sizeof jo);
        jo.done = summed;
        jo.payload = &jargs[i];
        capffi_job *job; /* freed by its handler */
        CHECK(capffi_fn_call_async_opts(&job, crc32, a, &jo));
    }

    /* 3. Run the loop until nothing keeps the context alive. */
    g_main_loop_run(st.loop);
    g_source_remove(bound);
    g_source_destroy(source); /* already removed: does nothing then */
    g_source_unref(source);
    g_main_loop_unref(st.loop);
    pthread_join(thread, NULL);

    /* Each checksum again, by a plain call: the buffers are back. */
    unsigned twice = 0, missing = 0, differ = 0;
    for (unsigned i = 0; i < N_CALLS; i++) {
        missing += st.calls[i] == 0;
        twice += st.calls[i] > 1;
    }
    for (unsigned i = 0; i < M_JOBS; i++) {
        missing += st.done[i] == 0;
        twice += st.done[i] > 1;
        capffi_value a[3], r;
        a[0].u64 = 0;
        a[1].buf = bufs[i];
        a[2].u64 = BUF_LEN;
        CHECK(capffi_fn_call(crc32, a, &r));
        differ += (uint32_t)r.u64 != st.sums[i];
        capffi_buf_free(bufs[i]);
    }
    printf("GLib %u.%u.%u: %u calls from another thread, %u completions\n",
           glib_major_version, glib_minor_version, glib_micro_version,
           st.n_calls, st.n_done);
    printf("on the loop's thread: %s; missing: %u; twice: %u; wrong: %u\n",
           st.off_loop ? "NO" : "all", missing, twice,
           st.bad + caller.wrong + differ);

    capffi_cb_close(st.cb);
    capffi_fn_free(crc32);
    capffi_lib_close(z);
    capffi_ctx_free(ctx);
    return (st.off_loop || missing || twice || differ || st.bad || caller.wrong)
               ? 1
               : 0;
}
