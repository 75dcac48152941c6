/*
 * jobs.c - nonblocking calls: libz compresses several buffers at once on
 * the context's worker pool while the owner thread waits in its own loop.
 *
 * 1. Each input is compressed by a job (capffi_fn_call_async_opts). Every
 *    buffer the job is given, the in-out length among them, is lent to it:
 *    until the job ends the host is refused those bytes, and so is any
 *    other call that asks for them.
 * 2. The owner waits for capffi_ctx_fd with poll(2), as a host with its
 *    own event loop would; capffi_ctx_poll then runs the completion
 *    handler of each job that ended, which takes the result and frees it.
 * 3. The checksums of the inputs are jobs too, without handlers: the host
 *    waits for each with capffi_job_wait. A plain call uncompresses every
 *    output, and its checksum is compared with the job's.
 *
 * The guide that goes with it is docs/jobs.md.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
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

#define N_INPUTS 8
#define INPUT_LEN (512u * 1024u)

/* One input and what its compression job gives back. */
struct item {
    capffi_buf *src;  /* the input */
    capffi_buf *dst;  /* compressBound(INPUT_LEN) bytes of output */
    capffi_buf *dlen; /* zlib's uLongf: the room in dst, then the size */
    int status;       /* the job's status (capffi_job_wait) */
    long long zrc;    /* compress's result: 0 is Z_OK */
    int ended;
    size_t *pending; /* jobs not ended yet */
};

/* The completion handler: runs on the owner thread, inside
 * capffi_ctx_poll, once the job has ended and its buffers are back. */
static void
compressed(void *payload, capffi_job *job)
{
    struct item *it = payload;
    capffi_value r = { .i64 = -1 };
    it->status = capffi_job_wait(&r, job, 0); /* the result, at once */
    it->zrc = r.i64;
    it->ended = 1;
    --*it->pending;
    capffi_job_free(job);
}

/* Text that compresses, different for each input. */
static void
fill(unsigned char *p, size_t n, unsigned seed)
{
    static const char *const words[] = { "token ",  "buffer ", "lent ",
                                         "worker ", "owner ",  "job ",
                                         "libz ",   "poll ",   "\n" };
    unsigned x = seed * 2654435761u + 1;
    size_t i = 0;
    while (i < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 9];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (unsigned char)w[k];
    }
}

int
main(void)
{
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    /* opts.workers = 0: one worker per core, at most 8, started on first
     * use; opts.job_queue = 0: up to 1024 jobs may wait for a worker. */
    capffi_ctx *ctx = NULL;
    if (capffi_ctx_new(&ctx, &opts)) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }

    /* A token for libz alone. */
    capffi_token all, tok;
    capffi_lib *z;
    CHECK(capffi_token_new(&all, ctx, "setup", NULL));
    CHECK(capffi_lib_open(&z, ctx, &all, "libz.so.1", 0));
    const char *paths[] = { capffi_lib_path(z) };
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN;
    scope.paths = paths;
    scope.n_paths = 1;
    CHECK(capffi_token_new(&tok, ctx, "zip", &scope));
    capffi_lib_close(z);
    CHECK(capffi_token_revoke(ctx, &all));
    CHECK(capffi_lib_open(&z, ctx, &tok, "libz.so.1", 0));
    printf("libz: %s\n", capffi_lib_path(z));

    /* Every pointer zlib writes through is a buffer, so a job has all of
     * them lent; a raw `pointer` argument would not be protected. */
    capffi_fn *bound, *compress, *uncompress, *crc32;
    CHECK(capffi_lib_bind(&bound, z, "compressBound", "(u64) -> u64", 0));
    CHECK(capffi_lib_bind(&compress, z, "compress",
                          "(buffer, buffer, buffer, u64) -> i32", 0));
    CHECK(capffi_lib_bind(&uncompress, z, "uncompress",
                          "(buffer, buffer, buffer, u64) -> i32", 0));
    CHECK(capffi_lib_bind(&crc32, z, "crc32", "(u64, buffer, u32) -> u64", 0));
    capffi_value a[4], r;
    a[0].u64 = INPUT_LEN;
    CHECK(capffi_fn_call(bound, a, &r));
    unsigned long room = (unsigned long)r.u64;

    /* 1. One compression job per input. */
    struct item items[N_INPUTS];
    memset(items, 0, sizeof items);
    size_t pending = 0;
    void *p;
    printf("\n1. %d inputs of %u bytes, compressed by jobs\n", N_INPUTS,
           INPUT_LEN);
    for (unsigned i = 0; i < N_INPUTS; i++) {
        struct item *it = &items[i];
        it->pending = &pending;
        CHECK(capffi_buf_new(&it->src, ctx, INPUT_LEN));
        CHECK(capffi_buf_new(&it->dst, ctx, room));
        CHECK(capffi_buf_new(&it->dlen, ctx, sizeof room));
        CHECK(capffi_buf_data(&p, NULL, it->src));
        fill(p, INPUT_LEN, i);
        CHECK(capffi_buf_data(&p, NULL, it->dlen));
        memcpy(p, &room, sizeof room);

        a[0].buf = it->dst;
        a[1].buf = it->dlen;
        a[2].buf = it->src;
        a[3].u64 = INPUT_LEN;
        capffi_job_options jo;
        memset(&jo, 0, sizeof jo);
        jo.done = compressed;
        jo.payload = it;
        capffi_job *job;
        CHECK(capffi_fn_call_async_opts(&job, compress, a, &jo));
        pending++;
        /* The handler frees the job: the host keeps no pointer to it. */
    }

    /* Until a job ends, its buffers are the job's: the host is refused
     * them, and so is another job that asks for them. This holds however
     * far the workers have got: a job ends on the owner thread, in
     * capffi_ctx_poll or capffi_job_wait. */
    int busy = capffi_buf_data(&p, NULL, items[0].src);
    printf("   capffi_buf_data of a lent input: %s\n", capffi_err_name(busy));
    a[0].u64 = 0;
    a[1].buf = items[0].src;
    a[2].u64 = INPUT_LEN;
    capffi_job *extra;
    int twice = capffi_fn_call_async(&extra, crc32, a);
    printf("   a second job with that input: %s\n", capffi_err_name(twice));
    if (busy != CAPFFI_EBUSY || twice != CAPFFI_EBUSY)
        return 1;

    /* 2. The owner's loop: wait for the descriptor, then run what is
     * queued; each ended job's handler runs here. */
    unsigned wakeups = 0;
    while (pending > 0) {
        struct pollfd pfd = { .fd = capffi_ctx_fd(ctx), .events = POLLIN };
        if (poll(&pfd, 1, 10000) <= 0) {
            fprintf(stderr, "no job ended within 10 s\n");
            return 1;
        }
        wakeups++;
        int rc = capffi_ctx_poll(ctx, 0);
        if (rc != CAPFFI_OK && rc != CAPFFI_ETIMEDOUT)
            CHECK(rc);
    }
    printf("\n2. every job ended (the loop woke %u times)\n", wakeups);
    for (unsigned i = 0; i < N_INPUTS; i++) {
        struct item *it = &items[i];
        if (!it->ended || it->status != CAPFFI_OK || it->zrc != 0) {
            fprintf(stderr, "input %u: %s, compress returned %lld\n", i,
                    capffi_err_name(it->status), it->zrc);
            return 1;
        }
        unsigned long packed;
        CHECK(capffi_buf_data(&p, NULL, it->dlen)); /* back with the host */
        memcpy(&packed, p, sizeof packed);
        printf("   input %u: %u -> %lu bytes\n", i, INPUT_LEN, packed);
    }

    /* 3. Checksums as jobs without handlers, waited for one by one; the
     * jobs run on the pool meanwhile. */
    capffi_job *sums[N_INPUTS];
    for (unsigned i = 0; i < N_INPUTS; i++) {
        a[0].u64 = 0;
        a[1].buf = items[i].src;
        a[2].u64 = INPUT_LEN;
        CHECK(capffi_fn_call_async(&sums[i], crc32, a));
    }
    capffi_buf *out;
    CHECK(capffi_buf_new(&out, ctx, INPUT_LEN));
    capffi_buf *olen;
    CHECK(capffi_buf_new(&olen, ctx, sizeof room));
    printf("\n3. round trip and checksums\n");
    int bad = 0;
    for (unsigned i = 0; i < N_INPUTS; i++) {
        CHECK(capffi_job_wait(&r, sums[i], 10000));
        unsigned long sum = (unsigned long)r.u64;
        capffi_job_free(sums[i]);

        unsigned long packed, n = INPUT_LEN;
        CHECK(capffi_buf_data(&p, NULL, items[i].dlen));
        memcpy(&packed, p, sizeof packed);
        CHECK(capffi_buf_data(&p, NULL, olen));
        memcpy(p, &n, sizeof n);
        a[0].buf = out;
        a[1].buf = olen;
        a[2].buf = items[i].dst;
        a[3].u64 = packed;
        CHECK(capffi_fn_call(uncompress, a, &r));
        CHECK(capffi_buf_data(&p, NULL, olen));
        memcpy(&n, p, sizeof n);
        a[0].u64 = 0;
        a[1].buf = out;
        a[2].u64 = n;
        CHECK(capffi_fn_call(crc32, a, &r));
        int same = n == INPUT_LEN && (unsigned long)r.u64 == sum;
        printf("   input %u: crc32 %08lx (job), %08lx (uncompressed): %s\n", i,
               sum, (unsigned long)r.u64, same ? "same" : "DIFFERENT");
        bad |= !same;
    }

    for (unsigned i = 0; i < N_INPUTS; i++) {
        capffi_buf_free(items[i].src);
        capffi_buf_free(items[i].dst);
        capffi_buf_free(items[i].dlen);
    }
    capffi_buf_free(out);
    capffi_buf_free(olen);
    capffi_fn_free(bound);
    capffi_fn_free(compress);
    capffi_fn_free(uncompress);
    capffi_fn_free(crc32);
    capffi_lib_close(z);
    capffi_ctx_free(ctx);
    return bad;
}
