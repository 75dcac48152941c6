/*
 * safeffi.c - SafeFFI against the system's libsqlite3 and libz, in safe
 * mode (docs/safeffi.md is the guide).
 *
 * The context is made with CAPFFI_OPT_SAFE and the token has neither the
 * pointer, read nor write right: no raw pointer crosses the boundary.
 * The sqlite3 connection and its prepared statements are instances of
 * opaque classes, handed back through out-parameters and closed by their
 * destructors (sqlite3_close, sqlite3_finalize), exactly once; the rows
 * of sqlite3_exec reach its callback as counted arrays of strings; zlib's
 * uLongf *destLen is an instance of u64. Both libraries are dlopen'd by
 * soname through the token, not linked. Exits 77 (skipped) when
 * libsqlite3.so.0 is not installed.
 */
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

#define SQLITE_OK 0
#define SQLITE_ROW 100
#define SQLITE_DONE 101
#define SQLITE_TRANSIENT (-1) /* sqlite copies the text */

/* The sqlite3_exec callback: int (*)(void *, int, char **, char **),
 * declared "(?*u8, i32, *[$1]cstring, *[$1]cstring) -> i32": argument 2
 * and 3 are arrays of as many strings as argument 1 says, valid while
 * this handler runs. */
static void
on_row(void *payload, const capffi_value *args, capffi_value *ret)
{
    int *rows = payload;
    int64_t n = args[1].i64;
    printf("  exec row %d:", ++*rows);
    for (int64_t i = 0; i < n; i++) {
        char path[24];
        capffi_value name, value;
        snprintf(path, sizeof path, "[%lld]", (long long)i);
        if (capffi_obj_get(&name, args[3].obj, path) ||
            capffi_obj_get(&value, args[2].obj, path)) {
            capffi_cb_fail("a row could not be read");
            return;
        }
        printf(" %s=%s", name.str, value.str ? value.str : "NULL");
    }
    printf("\n");
    ret->i64 = 0; /* go on */
}

int
main(void)
{
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL | CAPFFI_OPT_SAFE;
    capffi_ctx *ctx = NULL;
    if (capffi_ctx_new(&ctx, &opts)) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }

    /* The two libraries, by soname, as the dynamic loader finds them. */
    char sqlite_path[4096], z_path[4096];
    if (capffi_lib_resolve(sqlite_path, sizeof sqlite_path, ctx,
                           "libsqlite3.so.0")) {
        printf("SKIP: libsqlite3.so.0 is not installed (%s)\n",
               capffi_ctx_errmsg(ctx));
        capffi_ctx_free(ctx);
        return 77;
    }
    CHECK(capffi_lib_resolve(z_path, sizeof z_path, ctx, "libz.so.1"));

    /* A token for exactly those two files, with the dlopen and callback
     * rights only: no pointer, read or write right. */
    const char *paths[] = { sqlite_path, z_path };
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_CALLBACK;
    scope.paths = paths;
    scope.n_paths = 2;
    capffi_token tok;
    CHECK(capffi_token_new(&tok, ctx, "store", &scope));

    /* ---- sqlite3 ---------------------------------------------------- */

    capffi_lib *sq;
    CHECK(capffi_lib_open(&sq, ctx, &tok, "libsqlite3.so.0", 0));
    printf("libsqlite3: %s\n", capffi_lib_path(sq));

    /* Handles only sqlite reads: opaque classes, the token's own names. */
    CHECK(capffi_type_define_tok(ctx, &tok, "sqlite3", "opaque"));
    CHECK(capffi_type_define_tok(ctx, &tok, "sqlite3_stmt", "opaque"));

    capffi_fn *open, *errmsg, *exec, *prepare, *bind_text, *bind_int, *step,
        *col_int, *col_text, *reset;
    CHECK(capffi_lib_bind(&open, sq, "sqlite3_open",
                          "(cstring, out own *sqlite3 by sqlite3_close) -> i32",
                          0));
    CHECK(capffi_lib_bind(&errmsg, sq, "sqlite3_errmsg",
                          "(*sqlite3) -> cstring", 0));
    CHECK(capffi_lib_bind(&exec, sq, "sqlite3_exec",
                          "(*sqlite3, cstring, function, ?*u8, ?*cstring) "
                          "-> i32",
                          0));
    CHECK(capffi_lib_bind(&prepare, sq, "sqlite3_prepare_v2",
                          "(*sqlite3, cstring, i32, "
                          "out own *sqlite3_stmt by sqlite3_finalize, "
                          "?*cstring) -> i32",
                          0));
    /* The destructor argument is SQLITE_TRANSIENT, (void *)-1: an integer
     * of pointer width, so no raw pointer type is needed. */
    CHECK(capffi_lib_bind(&bind_text, sq, "sqlite3_bind_text",
                          "(*sqlite3_stmt, i32, cstring, i32, isize) -> i32",
                          0));
    CHECK(capffi_lib_bind(&bind_int, sq, "sqlite3_bind_int64",
                          "(*sqlite3_stmt, i32, i64) -> i32", 0));
    CHECK(capffi_lib_bind(&step, sq, "sqlite3_step", "(*sqlite3_stmt) -> i32",
                          0));
    CHECK(capffi_lib_bind(&col_int, sq, "sqlite3_column_int64",
                          "(*sqlite3_stmt, i32) -> i64", 0));
    CHECK(capffi_lib_bind(&col_text, sq, "sqlite3_column_text",
                          "(*sqlite3_stmt, i32) -> cstring", 0));
    CHECK(capffi_lib_bind(&reset, sq, "sqlite3_reset", "(*sqlite3_stmt) -> i32",
                          0));

    /* sqlite3_open(":memory:", &db): the out-parameter is a capffi_value
     * the call fills; db.obj is an owned instance of sqlite3. */
    capffi_value db, rc, a[5];
    a[0].str = ":memory:";
    a[1].p = &db;
    CHECK(capffi_fn_call(open, a, &rc));
    if (rc.i64 != SQLITE_OK || !db.obj) {
        fprintf(stderr, "sqlite3_open: %lld\n", (long long)rc.i64);
        return 1;
    }
    printf("sqlite3_open: an instance of %s\n", capffi_obj_class(db.obj));

    /* sqlite3_exec with a callback: the rows arrive as counted arrays. */
    capffi_cb *row_cb;
    int rows = 0;
    CHECK(capffi_cb_new(&row_cb, ctx, &tok,
                        "(?*u8, i32, *[$1]cstring, *[$1]cstring) -> i32",
                        on_row, &rows, 0));
    a[0].obj = db.obj;
    a[1].str = "CREATE TABLE fruit(name TEXT, qty INTEGER);"
               "INSERT INTO fruit VALUES ('apple', 3), ('pear', NULL);"
               "SELECT name, qty FROM fruit ORDER BY name;";
    a[2].cb = row_cb;
    a[3].obj = NULL; /* void *arg: NULL, allowed by ?*u8 */
    a[4].obj = NULL; /* char **errmsg: NULL, allowed by ?*cstring */
    CHECK(capffi_fn_call(exec, a, &rc));
    printf("sqlite3_exec: %lld, %d rows\n", (long long)rc.i64, rows);

    /* A prepared statement, an owned instance from an out-parameter. */
    capffi_value ins;
    a[0].obj = db.obj;
    a[1].str = "INSERT INTO fruit VALUES (?1, ?2)";
    a[2].i64 = -1;
    a[3].p = &ins;
    a[4].obj = NULL;
    CHECK(capffi_fn_call(prepare, a, &rc));
    if (rc.i64 != SQLITE_OK) {
        a[0].obj = db.obj;
        capffi_fn_call(errmsg, a, &rc);
        fprintf(stderr, "sqlite3_prepare_v2: %s\n", rc.str);
        return 1;
    }
    static const struct {
        const char *name;
        int64_t qty;
    } fruit[] = { { "fig", 12 }, { "kiwi", 7 } };
    for (size_t i = 0; i < sizeof fruit / sizeof fruit[0]; i++) {
        a[0].obj = ins.obj;
        a[1].i64 = 1;
        a[2].str = fruit[i].name;
        a[3].i64 = -1;
        a[4].i64 = SQLITE_TRANSIENT;
        CHECK(capffi_fn_call(bind_text, a, &rc));
        a[1].i64 = 2;
        a[2].i64 = fruit[i].qty;
        CHECK(capffi_fn_call(bind_int, a, &rc));
        CHECK(capffi_fn_call(step, a, &rc));
        if (rc.i64 != SQLITE_DONE) {
            fprintf(stderr, "sqlite3_step: %lld\n", (long long)rc.i64);
            return 1;
        }
        CHECK(capffi_fn_call(reset, a, &rc));
    }
    capffi_obj_free(ins.obj); /* sqlite3_finalize, once */

    capffi_value sel;
    a[0].obj = db.obj;
    a[1].str = "SELECT name, qty FROM fruit WHERE qty > ?1 ORDER BY qty";
    a[2].i64 = -1;
    a[3].p = &sel;
    a[4].obj = NULL;
    CHECK(capffi_fn_call(prepare, a, &rc));
    a[0].obj = sel.obj;
    a[1].i64 = 1;
    a[2].i64 = 5;
    CHECK(capffi_fn_call(bind_int, a, &rc));
    printf("qty > 5:");
    for (;;) {
        a[0].obj = sel.obj;
        CHECK(capffi_fn_call(step, a, &rc));
        if (rc.i64 != SQLITE_ROW)
            break;
        capffi_value name, qty;
        a[1].i64 = 0;
        CHECK(capffi_fn_call(col_text, a, &name));
        a[1].i64 = 1;
        CHECK(capffi_fn_call(col_int, a, &qty));
        printf(" %s (%lld)", name.str, (long long)qty.i64);
    }
    printf("\n");

    /* What safe mode and the classes refuse. */
    capffi_fn *raw = NULL;
    int r = capffi_lib_bind(&raw, sq, "sqlite3_free", "(pointer) -> void", 0);
    printf("(pointer) -> void in safe mode: %s: %s\n", capffi_err_name(r),
           capffi_ctx_errmsg(ctx));
    a[0].obj = sel.obj; /* a statement where a connection is declared */
    r = capffi_fn_call(errmsg, a, &rc);
    printf("sqlite3_errmsg(statement): %s: %s\n", capffi_err_name(r),
           capffi_ctx_errmsg(ctx));
    capffi_value field;
    r = capffi_obj_get(&field, db.obj, "");
    printf("reading an opaque instance: %s\n", capffi_err_name(r));

    capffi_obj_free(sel.obj); /* sqlite3_finalize */
    capffi_obj_free(db.obj);  /* sqlite3_close */
    capffi_obj_free(db.obj);  /* refused: the destructor does not run twice */
    printf("second free of the connection: %s\n", capffi_ctx_errmsg(ctx));

    /* ---- zlib ------------------------------------------------------- */

    capffi_lib *z;
    CHECK(capffi_lib_open(&z, ctx, &tok, "libz.so.1", 0));
    capffi_fn *bound, *compress, *uncompress;
    CHECK(capffi_lib_bind(&bound, z, "compressBound", "(u64) -> u64", 0));
    /* int compress(Bytef *dest, uLongf *destLen, const Bytef *source,
     *              uLong sourceLen): the bytes are capffi buffers, the
     * length an instance of u64 that zlib reads and writes. */
    CHECK(capffi_lib_bind(&compress, z, "compress",
                          "(buffer, *u64, buffer, u64) -> i32", 0));
    CHECK(capffi_lib_bind(&uncompress, z, "uncompress",
                          "(buffer, *u64, buffer, u64) -> i32", 0));

    const char *text = "SafeFFI: classes, typed pointers, out-parameters, "
                       "owned results; classes, typed pointers, classes.";
    size_t len = strlen(text) + 1;
    a[0].u64 = len;
    CHECK(capffi_fn_call(bound, a, &rc));
    size_t cap = (size_t)rc.u64;
    capffi_buf *src, *packed, *unpacked;
    CHECK(capffi_buf_new(&src, ctx, len));
    CHECK(capffi_buf_new(&packed, ctx, cap));
    CHECK(capffi_buf_new(&unpacked, ctx, len));
    void *p;
    CHECK(capffi_buf_data(&p, NULL, src));
    memcpy(p, text, len);

    capffi_obj *dlen;
    CHECK(capffi_obj_new(&dlen, ctx, "u64"));
    /* *destLen is the room in dest: never more than the buffer holds,
     * since zlib trusts it and capffi cannot check it. */
    CHECK(capffi_obj_set(dlen, "", (capffi_value){ .u64 = cap }));
    a[0].buf = packed;
    a[1].obj = dlen;
    a[2].buf = src;
    a[3].u64 = len;
    CHECK(capffi_fn_call(compress, a, &rc));
    capffi_value packed_len;
    CHECK(capffi_obj_get(&packed_len, dlen, ""));
    printf("compress: %s, %zu bytes -> %llu bytes\n",
           rc.i64 == 0 ? "Z_OK" : "error", len,
           (unsigned long long)packed_len.u64);

    CHECK(capffi_obj_set(dlen, "", (capffi_value){ .u64 = len }));
    a[0].buf = unpacked;
    a[2].buf = packed;
    a[3].u64 = packed_len.u64;
    CHECK(capffi_fn_call(uncompress, a, &rc));
    capffi_value out_len;
    CHECK(capffi_obj_get(&out_len, dlen, ""));
    CHECK(capffi_buf_data(&p, NULL, unpacked));
    int same = rc.i64 == 0 && out_len.u64 == len && memcmp(p, text, len) == 0;
    printf("uncompress: round trip %s\n", same ? "identical" : "DIFFERENT");
    capffi_obj_free(dlen);

    size_t leaks = capffi_ctx_leaks(ctx);
    printf("owned instances not freed: %zu\n", leaks);
    capffi_ctx_free(ctx);
    return same && rows == 2 && leaks == 0 ? 0 : 1;
}
