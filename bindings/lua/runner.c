/*
 * runner.c - capffi-lua: Lua 5.4 with capffi preloaded and FFI granted by
 * Deno-style flags. With no flag a script gets no FFI.
 *
 * Besides the grants, the runner closes the ways Lua code could reach
 * native code or other code's values around capffi (docs/lua.md,
 * "The runner"):
 *   - package.loadlib and the C module searcher load a native file only
 *     through capffi_lib_open, with a token minted from the permission
 *     for that one load, so the file checked is the file loaded (H4); the
 *     all-in-one searcher is gone;
 *   - every standard function that opens a file by name refuses the
 *     memory of processes and of the machine, judged on the opened
 *     descriptor (H5), and process creation needs --allow-run (H6);
 *   - the --audit file, known by its identity, is never opened for
 *     writing, removed or renamed by those functions, and the runner
 *     fails at the end when its name no longer leads to it (A1);
 *   - `load`, `loadfile`, `dofile`, `require` and the script itself accept
 *     text chunks only: a crafted binary chunk can corrupt memory;
 *   - the `debug` library is reduced to debug.traceback: the rest reads
 *     other functions' upvalues and locals, where modules keep tokens.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "capffi_lua.h"

static const char usage[] =
    "usage: capffi-lua [options] [script [args...]]\n"
    "\n"
    "Runs Lua 5.4 with the capffi module preloaded (require \"capffi\"), as\n"
    "lua5.4 does. Without an --allow-ffi option nothing gets FFI. The\n"
    "grants hold for everything run: -e, -l, the script and the REPL.\n"
    "\n"
    "grants:\n"
    "  --allow-ffi              allow FFI for every library and every right\n"
    "  --allow-ffi=PATH[,PATH]  allow these library files or directories\n"
    "                           (a bare soname such as libz.so.1 is looked\n"
    "                           up as the dynamic loader would)\n"
    "  --deny-ffi=PATH[,PATH]   deny these; deny wins over every allow\n"
    "  --allow-run              allow starting processes (os.execute,\n"
    "                           io.popen); off by default\n"
    "  --prompt                 ask on the terminal when the script calls\n"
    "                           capffi.permissions.request\n"
    "  --audit=FILE             write every audit event to FILE as JSON Lines\n"
    "                           as it happens\n"
    "  --safe                   safe mode: no raw pointers in signatures, no\n"
    "                           pointer_of, pointer_from or views of native\n"
    "                           memory; native memory only through classes\n"
    "                           (capffi.class)\n"
    "\n"
    "as lua5.4:\n"
    "  -e stat                  execute the string 'stat'\n"
    "  -l mod                   require library 'mod' into global 'mod'\n"
    "  -l g=mod                 require library 'mod' into global 'g'\n"
    "  -i                       enter interactive mode after running the\n"
    "                           script (or the -e and -l options)\n"
    "  -v                       show the versions\n"
    "  -E                       ignore LUA_PATH and LUA_CPATH\n"
    "  -W                       turn warnings on\n"
    "  --                       stop handling options\n"
    "  -                        stop handling options and run standard input\n"
    "\n"
    "  --help                   show this text\n"
    "  --version                show the versions\n"
    "\n"
    "-e and -l run in the order given, before the script. The script's\n"
    "arguments are in the global table `arg` (arg[0] is the script) and in\n"
    "`...`. With no script, no -e and no -v, the runner is interactive when\n"
    "standard input is a terminal and runs standard input otherwise.\n";

static const char *progname = "capffi-lua";

struct config {
    struct capffi_lua__grants grants; /* --allow-ffi, --deny-ffi */
    bool allow_run;
    bool prompt;
    bool safe; /* CAPFFI_OPT_SAFE */
    /* lua5.4's options (-e, -l and -W are run from argv, in order) */
    bool has_e, has_i, has_v, has_E;
    const char *audit;
};

/*
 * The --audit file. Every event is written to it the moment it happens, one
 * JSON line per write(2), so the file holds every event up to the instant
 * the process ends, however it ends, whatever the recorder in memory drops
 * (A1). Its identity is what the file checks below refuse to the script.
 */
static struct {
    int fd;           /* -1: no file */
    const char *path; /* as given on the command line */
    dev_t dev;        /* identity of the open file */
    ino_t ino;
    uint64_t lost; /* events that could not be written */
    int err;       /* errno of the first failed write */
} audit_out = { -1, NULL, 0, 0, 0, 0 };

/* ---- options ----------------------------------------------------------- */

/* Add the --allow-ffi=LIST or --deny-ffi=LIST value to c's grants,
 * parsed as CAPFFI_ALLOW_FFI and CAPFFI_DENY_FFI are (module.c). */
static int
add_paths(struct config *c, bool deny, const char *list, const char *flag)
{
    char msg[PATH_MAX + 256];
    int rc =
        capffi_lua__grants_add(&c->grants, deny, list, flag, msg, sizeof msg);
    if (rc == 0)
        return 0;
    fprintf(stderr, "%s: %s: %s\n", progname, capffi_err_name(rc), msg);
    return -1;
}

static void
free_config(struct config *c)
{
    capffi_lua__grants_free(&c->grants);
}

/*
 * Parse the options: the runner's long ones and lua5.4's (collectargs in
 * lua.c), in any order. Returns the index of the script in argv, argc when
 * there is none, or -1 (usage error, message printed) or -2 (--help or
 * --version done). -e, -l and -W are only checked here; they run later,
 * from argv, in the order given (run_options).
 */
static int
parse_args(int argc, char **argv, struct config *c)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1;
        if (a[0] != '-' || strcmp(a, "-") == 0)
            return i;
        if (strcmp(a, "--allow-ffi") == 0) {
            c->grants.allow_all = true;
        } else if (strncmp(a, "--allow-ffi=", 12) == 0) {
            if (add_paths(c, false, a + 12, "--allow-ffi"))
                return -1;
        } else if (strncmp(a, "--deny-ffi=", 11) == 0) {
            if (add_paths(c, true, a + 11, "--deny-ffi"))
                return -1;
        } else if (strcmp(a, "--allow-run") == 0) {
            c->allow_run = true;
        } else if (strcmp(a, "--prompt") == 0) {
            c->prompt = true;
        } else if (strcmp(a, "--safe") == 0) {
            c->safe = true;
        } else if (strncmp(a, "--audit=", 8) == 0 && a[8]) {
            c->audit = a + 8;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -2;
        } else if (strcmp(a, "--version") == 0) {
            printf("capffi-lua %s, %s\n", capffi_version(), LUA_RELEASE);
            return -2;
        } else if ((a[1] == 'e' || a[1] == 'l') && a[2] == '\0' &&
                   (i + 1 >= argc || argv[i + 1][0] == '-')) {
            /* as lua.c: the argument is the next word, never an option */
            fprintf(stderr, "%s: '%s' needs an argument\n%s", progname, a,
                    usage);
            return -1;
        } else if (a[1] == 'e' || a[1] == 'l') {
            c->has_e |= a[1] == 'e';
            if (a[2] == '\0')
                i++;
        } else if (a[1] && strchr("iEvW", a[1]) && a[2] == '\0') {
            c->has_i |= a[1] == 'i';
            c->has_v |= a[1] == 'i' || a[1] == 'v';
            c->has_E |= a[1] == 'E';
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n%s", progname, a, usage);
            return -1;
        }
    }
    return i;
}

/* ---- the prompt -------------------------------------------------------- */

/*
 * Ask on the controlling terminal, never on standard input (which the
 * script's own input may fill). No terminal: denied.
 */
static capffi_perm_state
prompt_tty(void *payload, const char *path)
{
    (void)payload;
    FILE *tty = fopen("/dev/tty", "r+e");
    if (!tty) {
        fprintf(stderr,
                "%s: no terminal to ask for FFI permission for %s: "
                "denied\n",
                progname, path ? path : "every library");
        return CAPFFI_PERM_DENIED;
    }
    fprintf(tty, "%s: allow FFI for %s? [y/N] ", progname,
            path ? path : "every library and every right");
    fflush(tty);
    char line[16] = "";
    bool yes = fgets(line, sizeof line, tty) &&
               (strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 ||
                strcmp(line, "Y\n") == 0);
    fclose(tty);
    return yes ? CAPFFI_PERM_GRANTED : CAPFFI_PERM_DENIED;
}

/* ---- the audit file ---------------------------------------------------- */

/* Write all n bytes of line, or count the event as lost. */
static void
audit_put(const char *line, size_t n)
{
    while (n) {
        ssize_t w = write(audit_out.fd, line, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!audit_out.lost++)
                audit_out.err = w < 0 ? errno : EIO;
            return;
        }
        line += w;
        n -= (size_t)w;
    }
}

/*
 * The context's audit sink: one event as one JSON line. It runs under the
 * context's audit lock on the thread that caused the event, so lines never
 * interleave, and calls nothing of capffi but the formatter.
 */
static void
audit_stream(void *payload, const capffi_event *ev)
{
    (void)payload;
    char small[1024];
    size_t n = capffi_audit_format_json(small, sizeof small - 1, ev);
    char *line = small;
    if (n >= sizeof small - 1) {
        line = malloc(n + 2);
        if (!line) {
            if (!audit_out.lost++)
                audit_out.err = ENOMEM;
            return;
        }
        capffi_audit_format_json(line, n + 1, ev);
    }
    line[n] = '\n';
    audit_put(line, n + 1);
    if (line != small)
        free(line);
}

/*
 * Open the --audit file before anything can happen, and remember its
 * identity; -1 with a message. O_APPEND: every event goes to the end of
 * the file, whatever else has the file open.
 */
static int
open_audit(const char *file)
{
    if (!file)
        return 0;
    struct stat st;
    audit_out.fd =
        open(file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0666);
    if (audit_out.fd < 0 || fstat(audit_out.fd, &st) != 0) {
        fprintf(stderr, "%s: --audit: cannot open '%s': %s\n", progname, file,
                strerror(errno));
        if (audit_out.fd >= 0)
            close(audit_out.fd);
        audit_out.fd = -1;
        return -1;
    }
    audit_out.path = file;
    audit_out.dev = st.st_dev;
    audit_out.ino = st.st_ino;
    return 0;
}

/* Is st the --audit file (by identity, so any link to it is)? */
static bool
is_audit_file(const struct stat *st)
{
    return audit_out.fd >= 0 && st->st_dev == audit_out.dev &&
           st->st_ino == audit_out.ino;
}

/*
 * End the --audit file, after the last event (the state is closed): report
 * on stderr what could not be written, and whether the path given no
 * longer names the file written (A1: the script moved a directory on the
 * path or removed a symlink, which the checks on names cannot refuse, and
 * a reader of that path would not find the events); then close it.
 * Returns -1 when any of that failed.
 */
static int
close_audit(void)
{
    if (audit_out.fd < 0)
        return 0;
    int rc = 0;
    const char *file = audit_out.path;
    if (audit_out.lost) {
        fprintf(stderr,
                "%s: --audit: %llu events could not be written to '%s': %s\n",
                progname, (unsigned long long)audit_out.lost, file,
                strerror(audit_out.err));
        rc = -1;
    }
    struct stat open_st, path_st;
    if (fstat(audit_out.fd, &open_st) != 0 || !is_audit_file(&open_st) ||
        stat(file, &path_st) != 0 || path_st.st_dev != open_st.st_dev ||
        path_st.st_ino != open_st.st_ino) {
        fprintf(stderr,
                "%s: --audit: '%s' no longer names the file the events were "
                "written to (it was moved, removed or replaced while the "
                "script ran)\n",
                progname, file);
        rc = -1;
    }
    if (close(audit_out.fd) != 0 && !rc) {
        fprintf(stderr, "%s: --audit: cannot write '%s': %s\n", progname, file,
                strerror(errno));
        rc = -1;
    }
    audit_out.fd = -1;
    return rc;
}

/*
 * os.exit([code [, close]]): the state is always closed first, so every
 * library is closed and the audit file has the closing events too; then
 * the audit file is ended, and a failure there makes the status 1, as at
 * the end of the script.
 */
static int
checked_exit(lua_State *L)
{
    int status;
    if (lua_isboolean(L, 1))
        status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    else
        status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    lua_close(L);
    if (close_audit())
        status = EXIT_FAILURE;
    exit(status);
}

/* ---- native code only through the permission ----------------------------- */

/*
 * package.loadlib(path, funcname) through capffi_lib_open (H4): a token
 * minted from the permission in force for this one load, and the file
 * opened once, checked by its identity and loaded through its descriptor,
 * so a symlink flipped after the check cannot change what loads. Lua
 * keeps the C functions it gets, so the library is never closed: it stays
 * loaded until the context is freed with the Lua state. funcname "*"
 * loads the library global (RTLD_GLOBAL, as Lua does), which needs the
 * dlopen_global right. Failures are Lua's: nil, a message and "open" or
 * "init".
 */
static int
checked_loadlib(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *sym = luaL_checkstring(L, 2);
    capffi_ctx *ctx = capffi_lua_ctx(L);
    bool global = strcmp(sym, "*") == 0;
    capffi_scope scope;
    memset(&scope, 0, sizeof scope);
    scope.rights = CAPFFI_RIGHT_DLOPEN;
    if (global)
        scope.rights |= CAPFFI_RIGHT_DLOPEN_GLOBAL;
    scope.max_uses = 1;
    capffi_token tok;
    capffi_lib *lib = NULL;
    /* The permission is asked for the name first, for a quick and plain
     * answer; what may load is then decided on the file itself. */
    capffi_perm_state st = CAPFFI_PERM_DENIED;
    if (!ctx || capffi_perm_query(&st, ctx, path) != CAPFFI_OK ||
        st != CAPFFI_PERM_GRANTED) {
        luaL_pushfail(L);
        lua_pushfstring(L,
                        "native code from '%s' needs FFI permission for it "
                        "(capffi-lua --allow-ffi=PATH)",
                        path);
        lua_pushliteral(L, "open");
        return 3;
    }
    int rc = capffi_token_new(&tok, ctx, "package.loadlib", &scope);
    if (!rc)
        rc = capffi_lib_open(&lib, ctx, &tok, path,
                             global ? CAPFFI_LIB_GLOBAL : 0);
    if (rc) {
        luaL_pushfail(L);
        if (rc == CAPFFI_EPERM)
            lua_pushfstring(L,
                            "native code from '%s' needs FFI permission for "
                            "it (%s): %s",
                            path,
                            global ? "capffi-lua --allow-ffi: \"*\" makes its "
                                     "symbols global, which needs the "
                                     "dlopen_global right"
                                   : "capffi-lua --allow-ffi=PATH",
                            capffi_ctx_errmsg(ctx));
        else
            lua_pushfstring(L, "%s: %s", capffi_err_name(rc),
                            ctx ? capffi_ctx_errmsg(ctx) : "capffi is closed");
        lua_pushliteral(L, "open");
        return 3;
    }
    if (global) {
        lua_pushboolean(L, 1);
        return 1;
    }
    void *addr = NULL;
    if ((rc = capffi_lib_symbol(&addr, lib, sym))) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", capffi_err_name(rc),
                        capffi_ctx_errmsg(ctx));
        lua_pushliteral(L, "init");
        return 3;
    }
    /* POSIX makes a symbol's address convertible to a function pointer. */
    _Static_assert(sizeof(lua_CFunction) == sizeof addr,
                   "function and object pointers differ in size");
    lua_CFunction f;
    memcpy(&f, &addr, sizeof f);
    lua_pushcfunction(L, f);
    return 1;
}

/* ---- files: never the memory of a process or of the machine ------------- */

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Refusals carry this errno, as the kernel's own refusals do. */
#define REFUSED_ERRNO EACCES

/* /dev/mem, /dev/kmem, /dev/port: the mem driver's minors 1, 2 and 4. */
static bool
machine_memory(dev_t rdev)
{
    return major(rdev) == 1 &&
           (minor(rdev) == 1 || minor(rdev) == 2 || minor(rdev) == 4);
}

/*
 * Is the file (dev, ino) mapped into this process? Every file behind
 * /proc/self/map_files is, and writing one changes what the process runs
 * or reads. Unreadable maps: assumed mapped (fail closed).
 */
static bool
mapped_here(dev_t dev, ino_t ino)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return true;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned maj, min;
        unsigned long long inode;
        if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3)
            found =
                inode != 0 && (ino_t)inode == ino && makedev(maj, min) == dev;
        /* A line longer than the buffer: skip the rest of it. */
        while (!strchr(line, '\n') && fgets(line, sizeof line, maps))
            ;
    }
    fclose(maps);
    return found;
}

/*
 * H5: may the script have the open file fd? Judged on the descriptor, so
 * whatever name or link led to it, and whatever was swapped before the
 * open, is what is judged. Refused, with the reason in why:
 *   - the memory file of a process or thread (/proc/PID/mem,
 *     /proc/PID/task/TID/mem, by the kernel's name for the open file) and
 *     /proc/kcore;
 *   - the machine's memory and ports (/dev/mem, /dev/kmem, /dev/port, by
 *     device number);
 *   - a regular file with no name left (a memory file descriptor, shared
 *     anonymous memory, a deleted file): what /proc/PID/map_files and
 *     /proc/PID/fd reach beyond the file system;
 *   - a file mapped into this process (what /proc/self/map_files reaches:
 *     the program, its libraries);
 *   - for writing (write true), the --audit file, by identity, whatever
 *     link or /proc/self/fd name led to it (A1). Reading it is allowed:
 *     it holds what capffi.audit.events() already shows the script.
 * A descriptor that cannot be examined is refused.
 */
static bool
refused_file(int fd, bool write, char *why, size_t cap)
{
    struct stat st;
    struct statfs fs;
    if (fstat(fd, &st) != 0 || fstatfs(fd, &fs) != 0) {
        snprintf(why, cap, "refused: the open file cannot be examined (%s)",
                 strerror(errno));
        return true;
    }
    if (write && is_audit_file(&st)) {
        snprintf(why, cap,
                 "refused: it is the --audit file, which a script may read "
                 "but never write");
        return true;
    }
    if (S_ISCHR(st.st_mode) && machine_memory(st.st_rdev)) {
        snprintf(why, cap,
                 "refused: it is the machine's memory or ports (device "
                 "%u:%u); capffi-lua never opens it",
                 major(st.st_rdev), minor(st.st_rdev));
        return true;
    }
    if (fs.f_type == PROC_SUPER_MAGIC) {
        char link[64], name[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, name, sizeof name - 1);
        if (n <= 0) {
            snprintf(why, cap,
                     "refused: a /proc file whose name cannot be read back");
            return true;
        }
        name[n] = '\0';
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (strcmp(base, "mem") == 0 || strcmp(base, "kcore") == 0) {
            snprintf(why, cap,
                     "refused: it is the memory of a process or of the "
                     "kernel (%s); capffi-lua never opens it",
                     name);
            return true;
        }
        return false;
    }
    if (S_ISREG(st.st_mode) && st.st_nlink == 0) {
        snprintf(why, cap,
                 "refused: a file with no name left (process memory or a "
                 "deleted file); capffi-lua never opens it");
        return true;
    }
    if (S_ISREG(st.st_mode) && mapped_here(st.st_dev, st.st_ino)) {
        snprintf(why, cap,
                 "refused: the file is mapped into this process's memory "
                 "(its program or a library); capffi-lua never opens it");
        return true;
    }
    return false;
}

/* open(2) flags for a valid io.open mode, as fopen makes them, but
 * without O_TRUNC: truncating waits for the check. */
static int
mode_flags(const char *mode, bool *trunc)
{
    bool plus = mode[1] == '+';
    *trunc = mode[0] == 'w';
    switch (mode[0]) {
    case 'r':
        return plus ? O_RDWR : O_RDONLY;
    case 'w':
        return (plus ? O_RDWR : O_WRONLY) | O_CREAT;
    default: /* 'a' */
        return (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    }
}

/* io.open's mode syntax: [rwa]%+?b* */
static bool
valid_mode(const char *mode)
{
    if (!*mode || !strchr("rwa", *mode++))
        return false;
    if (*mode == '+')
        mode++;
    return strspn(mode, "b") == strlen(mode);
}

/*
 * Open name as fopen(name, mode) would, then judge the descriptor
 * (refused_file) before anything is read, written or truncated. On
 * failure returns NULL with the reason in why and an errno in *err.
 */
static FILE *
open_checked(const char *name, const char *mode, char *why, size_t cap,
             int *err)
{
    bool trunc;
    struct stat st;
    /* The machine's memory is not even opened when its name says what it
     * is (opening a device runs its driver); the check on the descriptor
     * below is the one a swap cannot pass. */
    if (stat(name, &st) == 0 && S_ISCHR(st.st_mode) &&
        machine_memory(st.st_rdev)) {
        *err = REFUSED_ERRNO;
        snprintf(why, cap,
                 "refused: it is the machine's memory or ports (device "
                 "%u:%u); capffi-lua never opens it",
                 major(st.st_rdev), minor(st.st_rdev));
        return NULL;
    }
    int fd = open(name, mode_flags(mode, &trunc) | O_CLOEXEC, 0666);
    if (fd < 0) {
        *err = errno;
        snprintf(why, cap, "%s", strerror(*err));
        return NULL;
    }
    if (refused_file(fd, mode[0] != 'r' || mode[1] == '+', why, cap)) {
        close(fd);
        *err = REFUSED_ERRNO;
        return NULL;
    }
    /* O_TRUNC truncates regular files only; so does this. */
    if (trunc && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        ftruncate(fd, 0) != 0) {
        *err = errno;
        snprintf(why, cap, "%s", strerror(*err));
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, mode);
    if (!f) {
        *err = errno;
        snprintf(why, cap, "%s", strerror(*err));
        close(fd);
    }
    return f;
}

/* The close function of the file handles made here (the io library's own
 * is not public). */
static int
stream_close(lua_State *L)
{
    luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* A closed file handle, made before the file is opened so that a memory
 * error cannot leak an open file. */
static luaL_Stream *
new_stream(lua_State *L)
{
    luaL_Stream *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->f = NULL;
    p->closef = NULL;
    luaL_setmetatable(L, LUA_FILEHANDLE);
    return p;
}

/* Close the file handle at idx, as file:close() would, without looking at
 * its metatable (which the script can change). */
static void
close_stream(lua_State *L, int idx)
{
    luaL_Stream *p = luaL_checkudata(L, idx, LUA_FILEHANDLE);
    lua_CFunction cf = p->closef;
    if (!cf)
        return;
    p->closef = NULL;
    lua_pushcfunction(L, cf);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 0);
}

/* io.open(name [, mode]): nil, "name: reason", errno on failure. */
static int
checked_io_open(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    luaL_argcheck(L, valid_mode(mode), 2, "invalid mode");
    luaL_Stream *p = new_stream(L);
    char why[PATH_MAX + 160];
    int err = 0;
    if (!(p->f = open_checked(name, mode, why, sizeof why, &err))) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", name, why);
        lua_pushinteger(L, err);
        return 3;
    }
    p->closef = stream_close;
    return 1;
}

/*
 * io.input(name) and io.output(name): the file is opened here, checked,
 * and handed to the original function (upvalue 1) as a file handle; the
 * mode is upvalue 2. Other arguments go to the original unchanged.
 */
static int
checked_io_default(lua_State *L)
{
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        const char *name = lua_tostring(L, 1);
        const char *mode = lua_tostring(L, lua_upvalueindex(2));
        luaL_Stream *p = new_stream(L);
        char why[PATH_MAX + 160];
        int err;
        if (!(p->f = open_checked(name, mode, why, sizeof why, &err)))
            return luaL_error(L, "cannot open file '%s' (%s)", name, why);
        p->closef = stream_close;
        lua_replace(L, 1);
    }
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

/*
 * io.lines(name, ...): the original (upvalue 1) opens the file for
 * reading, reads nothing and returns it fourth (to be closed); it is
 * judged then, and closed with an error if refused.
 */
static int
checked_io_lines(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    for (int i = 1; i <= n; i++)
        lua_pushvalue(L, i);
    lua_call(L, n, LUA_MULTRET);
    int got = lua_gettop(L) - n;
    if (got >= 4 && luaL_testudata(L, n + 4, LUA_FILEHANDLE)) {
        luaL_Stream *p = lua_touserdata(L, n + 4);
        char why[PATH_MAX + 160];
        if (p->closef && p->f &&
            refused_file(fileno(p->f), false, why, sizeof why)) {
            close_stream(L, n + 4);
            return luaL_error(L, "cannot open file '%s' (%s)",
                              lua_tostring(L, 1), why);
        }
    }
    return got;
}

/*
 * Is name, itself (lstat: a symlink is judged as a symlink), the --audit
 * file? Set the refusal as os.remove's failures are: nil, "name: reason",
 * errno, and return true.
 */
static bool
refuse_audit_name(lua_State *L, const char *name)
{
    struct stat st;
    if (audit_out.fd < 0 || lstat(name, &st) != 0 || !is_audit_file(&st))
        return false;
    luaL_pushfail(L);
    lua_pushfstring(L,
                    "%s: refused: it is the --audit file, which a script "
                    "may not remove, rename or replace",
                    name);
    lua_pushinteger(L, REFUSED_ERRNO);
    return true;
}

/*
 * os.remove(name) and os.rename(from, to), refusing the --audit file (A1)
 * as name, as from, or as the file to replaces, by identity, so through a
 * hard link as well; otherwise the original (upvalue 1).
 */
static int
checked_remove(lua_State *L)
{
    if (refuse_audit_name(L, luaL_checkstring(L, 1)))
        return 3;
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int
checked_rename(lua_State *L)
{
    if (refuse_audit_name(L, luaL_checkstring(L, 1)) ||
        refuse_audit_name(L, luaL_checkstring(L, 2)))
        return 3;
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- chunks: text only, from checked files ------------------------------ */

struct reader {
    FILE *f;
    size_t n; /* bytes waiting in buf before the rest of the file */
    char buf[BUFSIZ];
};

static const char *
read_chunk(lua_State *L, void *ud, size_t *size)
{
    struct reader *r = ud;
    (void)L;
    if (r->n > 0) {
        *size = r->n;
        r->n = 0;
        return r->buf;
    }
    if (feof(r->f) || ferror(r->f))
        return NULL;
    *size = fread(r->buf, 1, sizeof r->buf, r->f);
    return r->buf;
}

/*
 * luaL_loadfilex(L, name, "t"), with the file opened by open_checked
 * (H5): a UTF-8 byte-order mark and a first line starting with '#' are
 * skipped, as lua does. name NULL reads standard input. Pushes the chunk
 * or the message; returns the status.
 */
static int
load_checked(lua_State *L, const char *name)
{
    if (!name)
        return luaL_loadfilex(L, NULL, "t");
    char why[PATH_MAX + 160];
    int err;
    struct reader *r = lua_newuserdatauv(L, sizeof *r, 0);
    int holder = lua_gettop(L);
    lua_pushfstring(L, "@%s", name);
    if (!(r->f = open_checked(name, "r", why, sizeof why, &err))) {
        lua_pushfstring(L, "cannot open %s: %s", name, why);
        lua_replace(L, holder);
        lua_settop(L, holder);
        return LUA_ERRFILE;
    }
    r->n = 0;
    static const unsigned char bom[] = { 0xEF, 0xBB, 0xBF };
    int c;
    while ((c = getc(r->f)) != EOF && r->n < 3 && c == bom[r->n])
        r->buf[r->n++] = (char)c;
    if (r->n == 3) {
        r->n = 0; /* the mark: dropped */
    }
    if (r->n == 0 && c == '#') {
        while ((c = getc(r->f)) != EOF && c != '\n')
            ;
        r->buf[r->n++] = '\n'; /* keeps the line numbers */
    } else if (c != EOF) {
        r->buf[r->n++] = (char)c;
    }
    int status = lua_load(L, read_chunk, r, lua_tostring(L, -1), "t");
    bool failed = ferror(r->f) != 0;
    fclose(r->f);
    if (failed) {
        lua_pushfstring(L, "cannot read %s", name);
        status = LUA_ERRFILE;
    }
    lua_replace(L, holder);
    lua_settop(L, holder);
    return status;
}

/* loadfile([name [, mode [, env]]]): text only, whatever mode says. */
static int
checked_loadfile(lua_State *L)
{
    const char *name = luaL_optstring(L, 1, NULL);
    bool env = !lua_isnone(L, 3);
    if (load_checked(L, name) != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env) {
        lua_pushvalue(L, 3);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

/* ---- processes: only with --allow-run ------------------------------------ */

/* os.execute and io.popen without --allow-run (H6). os.execute() with no
 * command answers that no shell is available. */
static int
no_run(lua_State *L)
{
    const char *what = lua_tostring(L, lua_upvalueindex(2));
    if (strcmp(what, "os.execute") == 0 && lua_isnoneornil(L, 1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return luaL_error(L,
                      "%s: starting a process needs the run permission "
                      "(capffi-lua --allow-run)",
                      what);
}

/* Replace t[name] (t at the top) with f, given the original and extra as
 * upvalues. */
static void
wrap_field(lua_State *L, const char *name, lua_CFunction f, const char *extra)
{
    lua_getfield(L, -1, name);
    if (extra)
        lua_pushstring(L, extra);
    lua_pushcclosure(L, f, extra ? 2 : 1);
    lua_setfield(L, -2, name);
}

/*
 * The io and os functions that open, remove or rename files or start
 * processes, replaced by the checked ones above (H5, H6, A1).
 */
static void
install_gates(lua_State *L, bool allow_run)
{
    lua_getglobal(L, "io");
    lua_pushcfunction(L, checked_io_open);
    lua_setfield(L, -2, "open");
    wrap_field(L, "lines", checked_io_lines, NULL);
    wrap_field(L, "input", checked_io_default, "r");
    wrap_field(L, "output", checked_io_default, "w");
    if (!allow_run)
        wrap_field(L, "popen", no_run, "io.popen");
    lua_getglobal(L, "os");
    if (!allow_run)
        wrap_field(L, "execute", no_run, "os.execute");
    wrap_field(L, "remove", checked_remove, NULL);
    wrap_field(L, "rename", checked_rename, NULL);
    lua_pushcfunction(L, checked_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 2);
}

/*
 * Installed with (checked loadlib, original load, checked loadfile) as
 * arguments: text-only loading and the checked searchers.
 */
static const char prelude[] =
    "local loadlib, load0, loadfile0 = ...\n"
    "package.loadlib = loadlib\n"
    "function load(chunk, name, mode, ...)\n"
    "  return load0(chunk, name, 't', ...)\n"
    "end\n"
    "function loadfile(file, mode, ...)\n"
    "  return loadfile0(file, 't', ...)\n"
    "end\n"
    "function dofile(file)\n"
    "  local f = assert(loadfile0(file, 't'))\n"
    "  return f()\n"
    "end\n"
    "local function fail(name, path, msg)\n"
    "  error(('error loading module \\'%s\\' from file \\'%s\\':\\n\\t%s')\n"
    "        :format(name, path, msg), 3)\n"
    "end\n"
    "package.searchers[2] = function(name)\n"
    "  local path, err = package.searchpath(name, package.path)\n"
    "  if not path then return err end\n"
    "  local f, msg = loadfile0(path, 't')\n"
    "  if not f then fail(name, path, msg) end\n"
    "  return f, path\n"
    "end\n"
    "package.searchers[3] = function(name)\n"
    "  local path, err = package.searchpath(name, package.cpath)\n"
    "  if not path then return err end\n"
    "  local mod = name:gsub('%.', '_')\n"
    "  local hyphen = mod:find('-', 1, true)\n"
    "  if hyphen then\n"
    "    local f = loadlib(path, 'luaopen_' .. mod:sub(1, hyphen - 1))\n"
    "    if f then return f, path end\n"
    "    mod = mod:sub(hyphen + 1)\n"
    "  end\n"
    "  local f, msg = loadlib(path, 'luaopen_' .. mod)\n"
    "  if not f then fail(name, path, msg) end\n"
    "  return f, path\n"
    "end\n"
    "package.searchers[4] = nil\n"
    "debug = { traceback = debug.traceback }\n"
    "package.loaded.debug = debug\n";

/* ---- running ----------------------------------------------------------- */

static int
msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)",
                                  luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The state running Lua code, for the SIGINT handler; NULL when none. */
static lua_State *volatile running_L;

/* Set by on_sigint: stop the running code with an error. */
static void
stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/*
 * SIGINT while Lua code runs stops that code with an error, as lua.c does:
 * lua_sethook is the one Lua function that may be called from a signal
 * handler. The next SIGINT gets the default action, so native code that
 * never returns can still be interrupted by a second one.
 */
static void
on_sigint(int sig)
{
    signal(sig, SIG_DFL);
    if (running_L)
        lua_sethook(running_L, stop_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT,
                    1);
}

/*
 * Call the function below the narg arguments at the top, protected, with
 * the traceback handler, SIGINT stopping it. Leaves nres results or the
 * message; returns the status.
 */
static int
docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    running_L = L;
    signal(SIGINT, on_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    running_L = NULL;
    lua_remove(L, base);
    return status;
}

static void
print_version(void)
{
    printf("capffi-lua %s, %s\n", capffi_version(), LUA_COPYRIGHT);
    fflush(stdout);
}

/* -l [g=]mod: g = require(mod), g being mod when not given. */
static int
dolibrary(lua_State *L, const char *spec)
{
    const char *eq = strchr(spec, '=');
    lua_getglobal(L, "require");
    lua_pushstring(L, eq ? eq + 1 : spec);
    int status = docall(L, 1, 1);
    if (status == LUA_OK) {
        lua_pushglobaltable(L);
        lua_pushlstring(L, spec, eq ? (size_t)(eq - spec) : strlen(spec));
        lua_pushvalue(L, -3);
        lua_settable(L, -3);
        lua_pop(L, 2);
    }
    return status;
}

/*
 * -e, -l and -W in the order given (runargs in lua.c); script is where
 * the options end. The first failure is raised. A -e string is text
 * only, as every chunk the runner loads.
 */
static void
run_options(lua_State *L, char **argv, int script)
{
    for (int i = 1; i < script; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "-W") == 0)
            lua_warning(L, "@on", 0);
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
            continue;
        const char *extra = a[2] ? a + 2 : argv[++i];
        int status;
        if (a[1] == 'e') {
            status = luaL_loadbufferx(L, extra, strlen(extra),
                                      "=(command line)", "t");
            if (status == LUA_OK)
                status = docall(L, 0, 0);
        } else {
            status = dolibrary(L, extra);
        }
        if (status != LUA_OK)
            lua_error(L);
    }
}

/* ---- the REPL (doREPL in lua.c) ------------------------------------------ */

/* Push _PROMPT or _PROMPT2 as a string, or the default; return it. */
static const char *
get_prompt(lua_State *L, bool first)
{
    if (lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushstring(L, first ? "> " : ">> ");
        return lua_tostring(L, -1);
    }
    const char *p = luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    return p;
}

/*
 * Show the prompt and push the next line of standard input, without its
 * newline, however long; 0 (nothing pushed) at the end of input. No line
 * editing: the runner depends on no line-editing library.
 */
static int
push_line(lua_State *L, bool first)
{
    const char *prompt = get_prompt(L, first);
    fputs(prompt, stdout);
    fflush(stdout);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[512];
    bool any = false;
    while (fgets(chunk, sizeof chunk, stdin)) {
        size_t n = strlen(chunk);
        bool end = n > 0 && chunk[n - 1] == '\n';
        any = true;
        luaL_addlstring(&b, chunk, end ? n - 1 : n);
        if (end)
            break;
    }
    luaL_pushresult(&b);
    lua_remove(L, -2); /* the prompt */
    if (!any) {
        lua_pop(L, 1);
        return 0;
    }
    const char *line = lua_tostring(L, -1);
    if (first && line[0] == '=') { /* "=expr", as in Lua 5.2 */
        lua_pushfstring(L, "return %s", line + 1);
        lua_remove(L, -2);
    }
    return 1;
}

/* Compile the line at the top as "return line;": an expression. */
static int
add_return(lua_State *L)
{
    const char *line = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbufferx(L, ret, strlen(ret), "=stdin", "t");
    if (status == LUA_OK)
        lua_remove(L, -2); /* the "return" line */
    else
        lua_pop(L, 2);
    return status;
}

/* Is the message at the top a syntax error at the end of the input? */
static bool
incomplete(lua_State *L, int status)
{
    static const char mark[] = "<eof>";
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    if (status != LUA_ERRSYNTAX || n < sizeof mark - 1 ||
        strcmp(msg + n - (sizeof mark - 1), mark) != 0)
        return false;
    lua_pop(L, 1);
    return true;
}

/* Compile the line at 1 as a statement, reading more lines while it is
 * incomplete. */
static int
multi_line(lua_State *L)
{
    for (;;) {
        size_t n;
        const char *text = lua_tolstring(L, 1, &n);
        int status = luaL_loadbufferx(L, text, n, "=stdin", "t");
        if (!incomplete(L, status) || !push_line(L, false))
            return status;
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
    }
}

/* Read and compile one entry: the chunk or the message at 1; -1 at the
 * end of input. */
static int
load_line(lua_State *L)
{
    lua_settop(L, 0);
    if (!push_line(L, true))
        return -1;
    int status = add_return(L);
    if (status != LUA_OK)
        status = multi_line(L);
    lua_remove(L, 1);
    return status;
}

/*
 * The REPL: each entry runs with the script's grants, in its globals; an
 * expression's values are printed with the global print. Errors are
 * reported on standard error and the REPL goes on, as in lua.c.
 */
static int
repl(lua_State *L)
{
    int status;
    while ((status = load_line(L)) != -1) {
        if (status == LUA_OK)
            status = docall(L, 0, LUA_MULTRET);
        int n = lua_gettop(L);
        if (status == LUA_OK && n > 0) {
            luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
            lua_getglobal(L, "print");
            lua_insert(L, 1);
            if (lua_pcall(L, n, 0, 0) != LUA_OK)
                fprintf(stderr, "%s: error calling 'print' (%s)\n", progname,
                        luaL_tolstring(L, -1, NULL));
        } else if (status != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            fprintf(stderr, "%s\n", msg ? msg : "(error object)");
        }
        fflush(stderr);
    }
    lua_settop(L, 0);
    fputs("\n", stdout);
    fflush(stdout);
    return 0;
}

/* ---- the script ---------------------------------------------------------- */

struct run {
    struct config *c;
    int argc, script;
    char **argv;
};

/* The script at argv[script] with its arguments; raises its error. "-"
 * is standard input, unless "--" came just before it (as in lua.c). */
static void
run_script(lua_State *L, const struct run *r)
{
    const char *file = r->argv[r->script];
    if (strcmp(file, "-") == 0 && strcmp(r->argv[r->script - 1], "--") != 0)
        file = NULL;
    if (load_checked(L, file) != LUA_OK)
        lua_error(L);
    for (int i = r->script + 1; i < r->argc; i++)
        lua_pushstring(L, r->argv[i]);
    if (docall(L, r->argc - r->script - 1, 0) != LUA_OK)
        lua_error(L);
}

/*
 * Everything that may raise, in protected mode: set up, then what the
 * command line asks, in lua.c's order: -v, -e and -l in order, the
 * script, the REPL. The grants are in force from the start.
 */
static int
run_protected(lua_State *L)
{
    struct run *r = lua_touserdata(L, 1);
    struct config *c = r->c;
    if (c->has_v)
        print_version();
    if (c->has_E) { /* LUA_PATH and LUA_CPATH are not read */
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }
    luaL_openlibs(L);

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = c->safe ? CAPFFI_OPT_SAFE : 0;
    capffi_lua__grants_options(&c->grants, &opts);
    if (c->prompt)
        opts.prompt = prompt_tty;
    capffi_lua_setup(L, &opts);
    lua_pop(L, 1);
    if (audit_out.fd >= 0 &&
        capffi_audit_set_sink(capffi_lua_ctx(L), audit_stream, NULL))
        return luaL_error(L, "--audit: %s",
                          capffi_ctx_errmsg(capffi_lua_ctx(L)));

    install_gates(L, c->allow_run);
    if (luaL_loadbuffer(L, prelude, sizeof prelude - 1, "=capffi-lua"))
        return lua_error(L);
    lua_pushcfunction(L, checked_loadlib);
    lua_getglobal(L, "load");
    lua_pushcfunction(L, checked_loadfile);
    lua_call(L, 3, 0);

    /* arg: the script at 0, its arguments after, the runner before; with
     * no script, the runner at 0 and its options after, as in lua.c. */
    bool has_script = r->script < r->argc;
    int script = has_script ? r->script : 0;
    lua_createtable(L, r->argc - script, script + 1);
    for (int i = 0; i < r->argc; i++) {
        lua_pushstring(L, r->argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");

    run_options(L, r->argv, r->script);
    if (has_script)
        run_script(L, r);
    if (c->has_i) {
        lua_pushcfunction(L, repl);
        lua_call(L, 0, 0);
    } else if (!has_script && !c->has_e && !c->has_v) {
        if (isatty(STDIN_FILENO)) {
            print_version();
            lua_pushcfunction(L, repl);
            lua_call(L, 0, 0);
        } else {
            if (load_checked(L, NULL) != LUA_OK || docall(L, 0, 0) != LUA_OK)
                return lua_error(L);
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct config c;
    memset(&c, 0, sizeof c);
    int script = parse_args(argc, argv, &c);
    if (script < 0) {
        free_config(&c);
        return script == -2 ? 0 : 1;
    }
    if (open_audit(c.audit)) {
        free_config(&c);
        return 1;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create a Lua state\n", progname);
        free_config(&c);
        return 1;
    }
    struct run r = { &c, argc, script, argv };
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, &r);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (!msg && luaL_callmeta(L, -1, "__tostring"))
            msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object)");
    }
    lua_close(L);
    int audit_rc = close_audit();
    free_config(&c);
    return status != LUA_OK || audit_rc ? 1 : 0;
}
