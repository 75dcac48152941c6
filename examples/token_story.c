/*
 * token_story.c - the revocable runtime, in C.
 *
 * An application grants FFI, hands a trusted module a token scoped to two
 * real system libraries (libz and libsqlite3), then withdraws FFI from
 * everyone else. The module keeps working; an untrusted plugin that tries
 * to mint its own token, forge one, or reach libc is refused; revoking the
 * module's token cascades to what it delegated. The audit trail shows
 * every decision.
 *
 * usage: token_story [LIBZ_PATH LIBSQLITE3_PATH]
 * Without arguments the libraries are looked for in the usual directories.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <capffi.h>

static const char *const lib_dirs[] = { "/lib/x86_64-linux-gnu",
                                        "/usr/lib/x86_64-linux-gnu",
                                        "/lib/aarch64-linux-gnu",
                                        "/usr/lib/aarch64-linux-gnu",
                                        "/lib64",
                                        "/usr/lib64",
                                        "/lib",
                                        "/usr/lib",
                                        NULL };

/* The first lib_dirs entry holding name, copied into out. */
static int
find_lib(char *out, size_t cap, const char *name)
{
    for (size_t i = 0; lib_dirs[i]; i++) {
        snprintf(out, cap, "%s/%s", lib_dirs[i], name);
        if (access(out, R_OK) == 0)
            return 0;
    }
    fprintf(stderr, "token_story: %s not found; pass its path\n", name);
    return -1;
}

static void
say(const char *who, const char *what, int rc, capffi_ctx *ctx)
{
    if (rc == 0)
        printf("  %-8s %-44s ok\n", who, what);
    else
        printf("  %-8s %-44s refused: %s\n           (%s)\n", who, what,
               capffi_err_name(rc), capffi_ctx_errmsg(ctx));
}

static void
print_audit(const capffi_ctx *ctx)
{
    size_t n =
        capffi_audit_count(ctx, CAPFFI_OP_ANY, CAPFFI_AUDIT_ANY_STATUS, NULL);
    printf("\naudit trail (%zu events)\n", n);
    printf("  %-4s %-16s %-16s %-17s %-10s %s\n", "seq", "op", "status",
           "reason", "label", "target");
    for (size_t i = 0; i < n; i++) {
        capffi_event ev;
        if (capffi_audit_get(&ev, ctx, i))
            break;
        const char *target = ev.target;
        size_t len = strlen(target);
        if (len > 40)
            target += len - 40;
        printf("  %-4llu %-16s %-16s %-17s %-10s %s\n",
               (unsigned long long)ev.seq, capffi_op_name(ev.op),
               capffi_err_name(ev.status), capffi_reason_name(ev.reason),
               ev.label, target);
    }
}

int
main(int argc, char **argv)
{
    char libz[4096], libsqlite[4096], libc[4096];
    if (argc == 3) {
        snprintf(libz, sizeof libz, "%s", argv[1]);
        snprintf(libsqlite, sizeof libsqlite, "%s", argv[2]);
    } else if (find_lib(libz, sizeof libz, "libz.so.1") ||
               find_lib(libsqlite, sizeof libsqlite, "libsqlite3.so.0")) {
        return 2;
    }
    if (find_lib(libc, sizeof libc, "libc.so.6"))
        return 2;

    /* The embedder grants FFI, as `--allow-ffi` would. */
    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = CAPFFI_OPT_ALLOW_ALL;
    capffi_ctx *ctx = NULL;
    int rc = capffi_ctx_new(&ctx, &opts);
    if (rc) {
        fprintf(stderr, "capffi_ctx_new: %s\n", capffi_ctx_errmsg(NULL));
        return 1;
    }
    capffi_audit_record(ctx, 256);

    printf("1. the trusted module takes a token for libz and libsqlite3\n");
    const char *paths[] = { libz, libsqlite };
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN | CAPFFI_RIGHT_CALLBACK;
    scope.paths = paths;
    scope.n_paths = 2;
    capffi_token module;
    rc = capffi_token_new(&module, ctx, "module", &scope);
    say("module", "capffi_token_new(libz, libsqlite3)", rc, ctx);
    if (rc)
        return 1;

    printf("2. the application withdraws FFI from everyone else\n");
    capffi_perm_state st;
    rc = capffi_perm_revoke(&st, ctx, NULL);
    say("app", "capffi_perm_revoke(all)", rc, ctx);

    printf("3. an untrusted plugin tries its luck\n");
    capffi_token plugin;
    say("plugin", "capffi_token_new (mint its own)",
        capffi_token_new(&plugin, ctx, "plugin", NULL), ctx);
    capffi_token forged = module;
    forged.tag[0] ^= 1;
    say("plugin", "use a forged copy of the module's token",
        capffi_token_check(ctx, &forged, CAPFFI_RIGHT_DLOPEN, libc), ctx);

    printf("4. the module keeps working, within its scope\n");
    say("module", "dlopen libz",
        capffi_token_check(ctx, &module, CAPFFI_RIGHT_DLOPEN, libz), ctx);
    say("module", "dlopen libsqlite3",
        capffi_token_check(ctx, &module, CAPFFI_RIGHT_DLOPEN, libsqlite), ctx);
    say("module", "dlopen libc (for system)",
        capffi_token_check(ctx, &module, CAPFFI_RIGHT_DLOPEN, libc), ctx);
    say("module", "take a pointer",
        capffi_token_check(ctx, &module, CAPFFI_RIGHT_POINTER, NULL), ctx);

    printf("5. the module delegates libz alone, then is revoked\n");
    const char *zonly[] = { libz };
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN;
    scope.paths = zonly;
    scope.n_paths = 1;
    scope.max_uses = 10;
    scope.label = "zhelper";
    capffi_token helper;
    say("module", "attenuate to libz, 10 uses",
        capffi_token_attenuate(&helper, ctx, &module, &scope), ctx);
    say("zhelper", "dlopen libz",
        capffi_token_check(ctx, &helper, CAPFFI_RIGHT_DLOPEN, libz), ctx);
    say("app", "capffi_token_revoke(module)", capffi_token_revoke(ctx, &module),
        ctx);
    say("zhelper", "dlopen libz",
        capffi_token_check(ctx, &helper, CAPFFI_RIGHT_DLOPEN, libz), ctx);

    print_audit(ctx);
    capffi_ctx_free(ctx);
    return 0;
}
