/*
 * runner.c - capffi-lua: Lua 5.4 with capffi preloaded and FFI granted by
 * Deno-style flags. With no flag a script gets no FFI.
 *
 * Besides the grants, the runner closes the ways Lua code could reach
 * native code or other code's values around capffi (docs/lua.md,
 * "The runner"):
 *   - package.loadlib and the C module searcher load a native file only
 *     when the context's FFI permission covers it, and the all-in-one
 *     searcher is gone;
 *   - `load`, `loadfile`, `dofile`, `require` and the script itself accept
 *     text chunks only: a crafted binary chunk can corrupt memory;
 *   - the `debug` library is reduced to debug.traceback: the rest reads
 *     other functions' upvalues and locals, where modules keep tokens.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "capffi_lua.h"

static const char usage[] =
    "usage: capffi-lua [options] script [args...]\n"
    "\n"
    "Runs a Lua 5.4 script with the capffi module preloaded "
    "(require \"capffi\").\n"
    "Without an --allow-ffi option the script gets no FFI.\n"
    "\n"
    "options:\n"
    "  --allow-ffi              allow FFI for every library and every right\n"
    "  --allow-ffi=PATH[,PATH]  allow these library files or directories\n"
    "                           (a bare soname such as libz.so.1 is looked\n"
    "                           up as the dynamic loader would)\n"
    "  --deny-ffi=PATH[,PATH]   deny these; deny wins over every allow\n"
    "  --prompt                 ask on the terminal when the script calls\n"
    "                           capffi.permissions.request\n"
    "  --audit=FILE             write every audit event to FILE as JSON Lines\n"
    "                           as it happens\n"
    "  --help                   show this text\n"
    "  --version                show the versions\n"
    "  --                       end of options\n"
    "\n"
    "A script of \"-\" is read from standard input. The script's arguments\n"
    "are in the global table `arg` (arg[0] is the script) and in `...`.\n";

static const char *progname = "capffi-lua";

struct config {
    bool allow_all;
    bool prompt;
    const char *audit;
    char **allow, **deny;
    size_t n_allow, n_deny;
};

/*
 * The --audit file. Every event is written to it the moment it happens, one
 * JSON line per write(2), so the file holds every event up to the instant
 * the process ends, however it ends, whatever the recorder in memory drops
 * (A1).
 */
static struct {
    int fd;        /* -1: no file */
    uint64_t lost; /* events that could not be written */
    int err;       /* errno of the first failed write */
} audit_out = { -1, 0, 0 };

/* ---- options ----------------------------------------------------------- */

/* Append each comma-separated item of list to *v, resolving sonames. */
static int
add_paths(char ***v, size_t *n, const char *list, const char *flag)
{
    const char *p = list;
    do {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= PATH_MAX) {
            fprintf(stderr, "%s: %s: empty or overlong path in '%s'\n",
                    progname, flag, list);
            return -1;
        }
        char item[PATH_MAX], found[PATH_MAX];
        memcpy(item, p, len);
        item[len] = '\0';
        int rc = capffi_lib_resolve(found, sizeof found, NULL, item);
        if (rc) {
            fprintf(stderr, "%s: %s: %s\n", progname, flag,
                    capffi_ctx_errmsg(NULL));
            return -1;
        }
        char **grown = realloc(*v, (*n + 1) * sizeof *grown);
        char *copy = strdup(found);
        if (!grown || !copy) {
            free(copy);
            if (grown)
                *v = grown;
            fprintf(stderr, "%s: out of memory\n", progname);
            return -1;
        }
        *v = grown;
        (*v)[(*n)++] = copy;
        p += len;
    } while (*p++ == ',');
    return 0;
}

static void
free_config(struct config *c)
{
    for (size_t i = 0; i < c->n_allow; i++)
        free(c->allow[i]);
    for (size_t i = 0; i < c->n_deny; i++)
        free(c->deny[i]);
    free(c->allow);
    free(c->deny);
}

/*
 * Parse the options. Returns the index of the script in argv, argc when
 * there is none, or -1 (usage error, message printed) or -2 (--help or
 * --version done).
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
            c->allow_all = true;
        } else if (strncmp(a, "--allow-ffi=", 12) == 0) {
            if (add_paths(&c->allow, &c->n_allow, a + 12, "--allow-ffi"))
                return -1;
        } else if (strncmp(a, "--deny-ffi=", 11) == 0) {
            if (add_paths(&c->deny, &c->n_deny, a + 11, "--deny-ffi"))
                return -1;
        } else if (strcmp(a, "--prompt") == 0) {
            c->prompt = true;
        } else if (strncmp(a, "--audit=", 8) == 0 && a[8]) {
            c->audit = a + 8;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -2;
        } else if (strcmp(a, "--version") == 0) {
            printf("capffi-lua %s, %s\n", capffi_version(), LUA_RELEASE);
            return -2;
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

/* Open the --audit file before anything can happen; -1 with a message. */
static int
open_audit(const char *file)
{
    if (!file)
        return 0;
    audit_out.fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (audit_out.fd < 0) {
        fprintf(stderr, "%s: --audit: cannot open '%s': %s\n", progname, file,
                strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Report what could not be written to the --audit file; -1 when something
 * was lost. The events themselves are already there.
 */
static int
write_audit(const char *file)
{
    if (audit_out.fd < 0 || !audit_out.lost)
        return 0;
    fprintf(stderr,
            "%s: --audit: %llu events could not be written to '%s': %s\n",
            progname, (unsigned long long)audit_out.lost, file,
            strerror(audit_out.err));
    audit_out.lost = 0;
    return -1;
}

/* os.exit, which closes the state first, so every library is closed and
 * the audit file has the closing events too. */
static lua_CFunction original_exit;

static int
checked_exit(lua_State *L)
{
    write_audit(lua_tostring(L, lua_upvalueindex(1)));
    lua_settop(L, 1);
    lua_pushboolean(L, 1);
    return original_exit(L);
}

/* ---- native code only through the permission ----------------------------- */

static lua_CFunction original_loadlib;

/* package.loadlib(path, funcname), once the permission covers path. */
static int
checked_loadlib(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    capffi_ctx *ctx = capffi_lua_ctx(L);
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
    lua_settop(L, 2);
    return original_loadlib(L);
}

/*
 * Installed with (checked loadlib, original load, original loadfile) as
 * arguments: text-only loading and the checked C searcher.
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

struct run {
    struct config *c;
    int argc, script;
    char **argv;
};

/* Everything that may raise, in protected mode: set up, then run. */
static int
run_protected(lua_State *L)
{
    struct run *r = lua_touserdata(L, 1);
    struct config *c = r->c;
    luaL_openlibs(L);

    capffi_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = c->allow_all ? CAPFFI_OPT_ALLOW_ALL : 0;
    opts.allow_paths = (const char *const *)c->allow;
    opts.n_allow = c->n_allow;
    opts.deny_paths = (const char *const *)c->deny;
    opts.n_deny = c->n_deny;
    if (c->prompt)
        opts.prompt = prompt_tty;
    capffi_lua_setup(L, &opts);
    lua_pop(L, 1);
    if (audit_out.fd >= 0 &&
        capffi_audit_set_sink(capffi_lua_ctx(L), audit_stream, NULL))
        return luaL_error(L, "--audit: %s",
                          capffi_ctx_errmsg(capffi_lua_ctx(L)));

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loadlib");
    original_loadlib = lua_tocfunction(L, -1);
    lua_pop(L, 2);
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "exit");
    original_exit = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    lua_pushstring(L, c->audit);
    lua_pushcclosure(L, checked_exit, 1);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
    if (!original_loadlib || !original_exit)
        return luaL_error(L, "the standard library is not the expected one");
    if (luaL_loadbuffer(L, prelude, sizeof prelude - 1, "=capffi-lua"))
        return lua_error(L);
    lua_pushcfunction(L, checked_loadlib);
    lua_getglobal(L, "load");
    lua_getglobal(L, "loadfile");
    lua_call(L, 3, 0);

    /* arg: the script at 0, its arguments after, the runner before. */
    int script = r->script;
    lua_createtable(L, r->argc - script, script + 1);
    for (int i = 0; i < r->argc; i++) {
        lua_pushstring(L, r->argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, msghandler);
    int handler = lua_gettop(L);
    const char *file =
        strcmp(r->argv[script], "-") == 0 ? NULL : r->argv[script];
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return lua_error(L);
    for (int i = script + 1; i < r->argc; i++)
        lua_pushstring(L, r->argv[i]);
    if (lua_pcall(L, r->argc - script - 1, 0, handler) != LUA_OK)
        return lua_error(L);
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
        return script == -2 ? 0 : 2;
    }
    if (script >= argc) {
        fprintf(stderr, "%s: no script given\n%s", progname, usage);
        free_config(&c);
        return 2;
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
    int audit_rc = write_audit(c.audit);
    if (audit_out.fd >= 0 && close(audit_out.fd) != 0 && !audit_rc) {
        fprintf(stderr, "%s: --audit: cannot write '%s': %s\n", progname,
                c.audit, strerror(errno));
        audit_rc = -1;
    }
    free_config(&c);
    return status != LUA_OK || audit_rc ? 1 : 0;
}
