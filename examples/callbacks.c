/*
 * callbacks.c - native code calling back into the host through a token.
 *
 * 1. qsort from libc sorts an array with a comparator callback.
 * 2. A comparator that fails: qsort gets the default result, the host
 *    reads why from the callback's status after the call.
 * 3. A thread that native code started calls a thread-safe callback; the
 *    owner thread runs it in capffi_ctx_poll, until nothing keeps the loop
 *    alive.
 * 4. The callback is closed: native code that kept the pointer gets the
 *    default result, never a crash.
 *
 * The guide that goes with it is docs/callbacks.md.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <capffi.h>

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_) {                                                             \
            fprintf(stderr, "%s: %s: %s\n", #call, capffi_err_name(rc_),       \
                    capffi_ctx_errmsg(ctx));                                   \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* The comparator's handler: (pointer, pointer) -> i32. */
static void
compare(void *payload, const capffi_value *args, capffi_value *ret)
{
    int *calls = payload;
    const int *a = args[0].p, *b = args[1].p;
    (*calls)++;
    if (*a == 13 || *b == 13) {
        capffi_cb_fail("13 is not welcome here");
        return;
    }
    ret->i64 = (*a > *b) - (*a < *b);
}

/* A thread-safe handler: (i32) -> i32, the square. */
static void
square(void *payload, const capffi_value *args, capffi_value *ret)
{
    int *runs = payload;
    (*runs)++; /* always on the owner thread: no lock needed */
    ret->i64 = args[0].i64 * args[0].i64;
}

/* What a native library's worker thread would do with the pointer. */
struct worker {
    int32_t (*fn)(int32_t);
    int32_t sum;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    for (int32_t i = 1; i <= 10; i++)
        w->sum += w->fn(i);
    return NULL;
}

static void
show(const char *what, const int *v, size_t n)
{
    printf("%s:", what);
    for (size_t i = 0; i < n; i++)
        printf(" %d", v[i]);
    printf("\n");
}

int
main(void)
{
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    capffi_ctx *ctx = NULL;
    if (capffi_ctx_new(&ctx, &opts)) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }
    capffi_token tok;
    CHECK(capffi_token_new(&tok, ctx, "callbacks", NULL));

    /* 1. qsort with a comparator callback. */
    capffi_lib *libc;
    CHECK(capffi_lib_open(&libc, ctx, &tok, "libc.so.6", 0));
    capffi_fn *qsort_fn;
    CHECK(capffi_lib_bind(&qsort_fn, libc, "qsort",
                          "(pointer, usize, usize, function) -> void", 0));
    int calls = 0;
    capffi_cb *cmp;
    CHECK(capffi_cb_new(&cmp, ctx, &tok, "(pointer, pointer) -> i32", compare,
                        &calls, 0));
    int v[] = { 42, 7, 19, -3, 0, 8 };
    size_t n = sizeof v / sizeof v[0];
    capffi_value a[4];
    a[0].p = v;
    a[1].u64 = n;
    a[2].u64 = sizeof v[0];
    a[3].cb = cmp; /* a function argument is a callback (or a capffi_fn) */
    CHECK(capffi_fn_call(qsort_fn, a, NULL));
    show("sorted", v, n);
    printf("comparator calls: %d\n", calls);

    /* 2. The handler fails: qsort sees 0 ("equal"), the host learns why. */
    int w[] = { 5, 13, 1 };
    a[0].p = w;
    a[1].u64 = 3;
    CHECK(capffi_fn_call(qsort_fn, a, NULL));
    capffi_cb_status st;
    CHECK(capffi_cb_take_status(&st, cmp));
    printf("status: %s, %llu failed comparison(s), first: %s\n",
           capffi_err_name(st.first), (unsigned long long)st.failures,
           st.detail);

    /* 3. A thread-safe callback called from another thread. */
    int runs = 0;
    capffi_cb *sq;
    CHECK(capffi_cb_new(&sq, ctx, &tok, "(i32) -> i32", square, &runs,
                        CAPFFI_CB_THREADSAFE));
    CHECK(capffi_cb_ref(NULL, sq)); /* keep the loop alive for it */
    struct worker wk;
    void *code = capffi_cb_code(sq);
    memcpy(&wk.fn, &code, sizeof code);
    wk.sum = 0;
    pthread_t th;
    if (pthread_create(&th, NULL, work, &wk) != 0)
        return 1;
    while (capffi_ctx_keepalive(ctx) > 0) {
        int rc = capffi_ctx_poll(ctx, 100); /* the handler runs here */
        if (rc != CAPFFI_OK && rc != CAPFFI_ETIMEDOUT)
            CHECK(rc);
        if (runs == 10)
            CHECK(capffi_cb_unref(NULL, sq)); /* expect no more calls */
    }
    pthread_join(th, NULL);
    printf("sum of squares 1..10 from a worker thread: %d\n", wk.sum);

    /* 4. Closed: the pointer stays callable and fails closed. */
    capffi_cb_close(sq);
    printf("after close: %d\n", wk.fn(3));
    CHECK(capffi_cb_take_status(&st, sq));
    printf("status: %s (%s)\n", capffi_err_name(st.first), st.detail);

    capffi_ctx_free(ctx);
    return wk.sum == 385 ? 0 : 1;
}
