/*
 * call/job.c - nonblocking calls from Lua: f:async(...), functions bound
 * with `async = true`, and the job objects they return.
 *
 * A job is a userdata over a capffi_job. Its arguments are converted as a
 * synchronous call's (fn.c); capffi copies scalars, struct bytes and
 * cstring text at submission and lends every buffer to the job, so that
 * Lua code touching one until the job ends gets CAPFFI_EBUSY from capffi
 * itself (buffer.c and view.c ask capffi for the bytes on every access).
 *
 * Lifetimes. While a job has not ended, its userdata is anchored in the
 * registry, and it keeps its function and every argument (the lent
 * buffers among them) in its user value: a script that drops a running
 * job leaves nothing for the collector to free under native code. The
 * anchor is dropped once the owner has seen the job end.
 *
 * Completion. Each job is submitted with a done handler (job_done), which
 * capffi runs on the owner thread inside capffi_ctx_poll, that is inside
 * capffi.poll or job:wait. A Lua error must not unwind through capffi's
 * loop, and a coroutine must not be resumed from inside it, so the
 * handler only marks the job ended and appends it to a list, which takes
 * no memory; capffi.poll walks the list once capffi_ctx_poll has returned
 * (capffi_lua__job_resume), drops the anchors and resumes the coroutines
 * that await those jobs. A coroutine's error is raised by capffi.poll.
 *
 * job:wait waits with capffi_job_wait: a job that ends during it gives
 * its result to the wait and runs no handler, so job:wait marks it ended
 * itself; one that times out keeps its handler, for a later job:await.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "call/call.h"

/* Registry key of the list of ended jobs not yet seen by capffi.poll. */
#define ENDED_LIST "capffi.jobs.ended"

struct ljob;

/* The jobs that ended, oldest first (a userdata of the registry). */
struct ended {
    struct ljob *head, *tail;
};

struct ljob {
    capffi_job *job; /* NULL once closed (or never submitted) */
    struct capffi_lua__state *st;
    const struct capffi_lua__fn *f; /* kept alive by the user value */
    struct ended *list;
    struct ljob *next; /* in list, while listed */
    bool listed;
    bool ended;  /* capffi ended it (or it was closed): nothing runs now */
    int waiting; /* job:waits waiting for it (they nest in callbacks):
                    it can be neither closed nor awaited meanwhile */
    int self;    /* registry reference anchoring it; LUA_NOREF once ended */
    int co;      /* registry reference of the awaiting coroutine, or
                    LUA_NOREF */
};

/* ---- the list of ended jobs -------------------------------------------- */

/* Mark j ended and list it for capffi.poll. Takes no memory and raises
 * nothing: the done handler calls it from inside capffi's loop. */
static void
mark_ended(struct ljob *j)
{
    j->ended = true;
    if (j->listed)
        return;
    j->listed = true;
    j->next = NULL;
    if (j->list->tail)
        j->list->tail->next = j;
    else
        j->list->head = j;
    j->list->tail = j;
}

static void
unlist(struct ljob *j)
{
    if (!j->listed)
        return;
    struct ljob **pp = &j->list->head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = j->next;
        if (j->list->tail == j)
            j->list->tail = prev;
    }
    j->listed = false;
    j->next = NULL;
}

/* capffi's handler: the job ended (on the owner thread, in its loop). */
static void
job_done(void *payload, capffi_job *job)
{
    (void)job;
    mark_ended(payload);
}

static void
unanchor(lua_State *L, struct ljob *j)
{
    luaL_unref(L, LUA_REGISTRYINDEX, j->self);
    j->self = LUA_NOREF;
}

static struct ended *
ended_list(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, ENDED_LIST);
    struct ended *list = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return list;
}

bool
capffi_lua__job_ended(lua_State *L)
{
    struct ended *list = ended_list(L);
    return list && list->head;
}

/* Close a coroutine that failed (its to-be-closed variables run), leaving
 * its error value on its top, as coroutine.wrap does. */
static void
close_failed(lua_State *co, lua_State *from)
{
#if LUA_VERSION_RELEASE_NUM >= 50406
    lua_closethread(co, from);
#else
    (void)from;
    lua_resetthread(co);
#endif
}

size_t
capffi_lua__job_resume(lua_State *L)
{
    struct ended *list = ended_list(L);
    if (!list)
        return 0;
    size_t resumed = 0;
    /* Only the jobs listed now: a resumed coroutine may end more. */
    struct ljob *last = list->tail;
    while (list->head) {
        struct ljob *j = list->head;
        bool stop = j == last;
        unlist(j);
        int top = lua_gettop(L);
        /* On the stack while it runs: the anchor goes now. */
        lua_rawgeti(L, LUA_REGISTRYINDEX, j->self);
        unanchor(L, j);
        if (j->co != LUA_NOREF) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, j->co);
            luaL_unref(L, LUA_REGISTRYINDEX, j->co);
            j->co = LUA_NOREF;
            lua_State *co = lua_tothread(L, -1);
            /* Only a coroutine suspended in await; one that was resumed
             * meanwhile by other code finds the job ended when it awaits
             * it again. */
            if (co && co != L && lua_status(co) == LUA_YIELD) {
                int nres;
                int rc = lua_resume(co, L, 0, &nres);
                resumed++;
                if (rc != LUA_OK && rc != LUA_YIELD) {
                    close_failed(co, L);
                    lua_xmove(co, L, 1);
                    lua_error(L); /* the coroutine's own error value */
                }
                lua_pop(co, nres);
            }
        }
        lua_settop(L, top);
        if (stop)
            break;
    }
    return resumed;
}

/* ---- submitting ---------------------------------------------------------- */

int
capffi_lua__job_submit(lua_State *L, const struct capffi_lua__fn *f, int fn_idx,
                       int base)
{
    fn_idx = lua_absindex(L, fn_idx);
    capffi_value args[CAPFFI_MAX_ARGS];
    capffi_lua__fn_args(L, f, base, args, NULL);
    int n = lua_gettop(L) - base + 1;

    lua_getfield(L, LUA_REGISTRYINDEX, ENDED_LIST);
    struct ended *list = lua_touserdata(L, -1);
    lua_pop(L, 1);
    struct ljob *j = lua_newuserdatauv(L, sizeof *j, 1);
    *j = (struct ljob){
        .st = f->st, .f = f, .list = list, .self = LUA_NOREF, .co = LUA_NOREF
    };
    luaL_setmetatable(L, CAPFFI_LUA_JOB);
    /* The function and the arguments, the buffers lent among them, live
     * as long as the job. */
    lua_createtable(L, n + 1, 0);
    lua_pushvalue(L, fn_idx);
    lua_rawseti(L, -2, 1);
    for (int i = 0; i < n; i++) {
        lua_pushvalue(L, base + i);
        lua_rawseti(L, -2, i + 2);
    }
    lua_setiuservalue(L, -2, 1);

    capffi_job_options opts = { .done = job_done, .payload = j };
    int rc = capffi_fn_call_async_opts(&j->job, f->fn, args, &opts);
    if (rc)
        return capffi_lua__fail(L, f->st, rc, f->name);
    lua_pushvalue(L, -1);
    j->self = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* f:async(...): f is a bound function (from dlopen or tok:fnptr). */
/* A call of a function bound with async = true (fn.c, through the
 * registry): the function's userdata, then the call's arguments. */
static int
async_call(lua_State *L)
{
    const struct capffi_lua__fn *f = lua_touserdata(L, 1);
    return capffi_lua__job_submit(L, f, 1, 2);
}

static int
fn_async(lua_State *L)
{
    const struct capffi_lua__fn *f = capffi_lua__fn_of(L, 1);
    if (!f)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "async: expected a bound function, got %s",
                                 capffi_lua__typename(L, 1));
    lua_replace(L, 1); /* its userdata, which the job keeps */
    return capffi_lua__job_submit(L, f, 1, 2);
}

/* __index of functions: `async` for bound functions; indexing any other
 * function, or another key, is the error Lua gives without a metatable. */
static int
fn_index(lua_State *L)
{
    const char *key = lua_tostring(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(key, "async") == 0 &&
        capffi_lua__fn_of(L, 1)) {
        lua_pushcfunction(L, fn_async);
        return 1;
    }
    return luaL_error(L, "attempt to index a function value");
}

/* ---- the job object ----------------------------------------------------- */

static struct ljob *
check_job(lua_State *L, int idx, bool open)
{
    struct ljob *j = capffi_lua__check_object(L, idx, CAPFFI_LUA_JOB, "job");
    capffi_lua__ctx(L, j->st);
    if (open && !j->job)
        capffi_lua__error(L, CAPFFI_ECLOSED, "job: the job was closed");
    return j;
}

/*
 * Wait up to ms for the job at idx (capffi_job_wait: it returns at once
 * for an ended job, and otherwise runs the owner's loop, so this is a
 * native section), then return its results as a synchronous call would
 * or raise its error. A job that ends during the wait gives its result to
 * it and runs no handler, so it is marked ended here.
 */
static int
finish(lua_State *L, int idx, struct ljob *j, int ms)
{
    if (!j->job)
        return capffi_lua__error(L, CAPFFI_ECLOSED,
                                 "%s: the job was closed before it ended",
                                 j->f->name);
    lua_getiuservalue(L, idx, 1);
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    int fn_idx = lua_gettop(L);
    capffi_value r = { 0 };
    luaL_Buffer b;
    capffi_lua__fn_result_begin(L, j->f, fn_idx, &r, &b);
    struct capffi_lua__native wait;
    capffi_lua__native_enter(L, j->st, &wait);
    j->waiting++;
    int rc = capffi_job_wait(&r, j->job, ms);
    j->waiting--;
    /* The job has ended only when the answer is its own status; a wait
     * that timed out or failed (another thread, the loop's poll, a result
     * a nested wait took) leaves it as it was. */
    bool pending = rc != CAPFFI_OK && rc != CAPFFI_ECANCELED &&
                   rc != CAPFFI_ECLOSED && rc != CAPFFI_EREVOKED;
    if (!pending) { /* capffi.poll has nothing left to do for it */
        j->ended = true;
        unlist(j);
        unanchor(L, j);
    }
    capffi_lua__native_leave(L, j->st, &wait, "wait");
    if (rc == CAPFFI_ETIMEDOUT)
        return capffi_lua__error(L, CAPFFI_ETIMEDOUT,
                                 "wait: %s has not ended after %d ms",
                                 j->f->name, ms);
    if (rc)
        return capffi_lua__fail(L, j->st, rc, pending ? "wait" : j->f->name);
    return capffi_lua__fn_result_end(L, j->f, &r, &b);
}

/* The result of the ended job at idx, as a synchronous call returns it. */
static int
take_result(lua_State *L, int idx, struct ljob *j)
{
    return finish(L, idx, j, 0);
}

/*
 * job:wait([timeout_ms]): run the context's loop (thread-safe callbacks,
 * other jobs' completions) until the job ends, at most timeout_ms
 * (default: no limit; 0: do not wait), then return its results or raise
 * its error; CAPFFI_ETIMEDOUT when the time ran out first.
 */
static int
job_wait(lua_State *L)
{
    struct ljob *j = check_job(L, 1, true);
    lua_Integer ms = lua_isnoneornil(L, 2)
                         ? -1
                         : capffi_lua__check_integer(L, 2, "wait: timeout_ms");
    if (ms > INT_MAX || ms < INT_MIN)
        return capffi_lua__error(L, CAPFFI_ERANGE,
                                 "wait: timeout_ms %lld is out of range",
                                 (long long)ms);
    if (j->co != LUA_NOREF)
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "wait: a coroutine awaits this job");
    lua_settop(L, 1);
    return finish(L, 1, j, ms < 0 ? -1 : (int)ms);
}

static int
await_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    (void)kctx;
    struct ljob *j = check_job(L, 1, false);
    if (!j->ended) {
        /* Resumed by other code before the job ended: wait on. */
        if (j->co == LUA_NOREF) {
            lua_pushthread(L);
            j->co = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        return lua_yieldk(L, 0, 0, await_k);
    }
    if (j->co != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, j->co);
        j->co = LUA_NOREF;
    }
    return take_result(L, 1, j);
}

/*
 * job:await(): in a coroutine, yield until capffi.poll sees the job end,
 * then return as job:wait does. Outside a coroutine (or where a yield
 * would cross a C call), CAPFFI_EINVAL.
 */
static int
job_await(lua_State *L)
{
    struct ljob *j = check_job(L, 1, false);
    lua_settop(L, 1);
    if (j->ended)
        return take_result(L, 1, j);
    if (j->co != LUA_NOREF)
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "await: another coroutine awaits this job");
    if (j->waiting) /* the wait takes the result: none would resume it */
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "await: job:wait is waiting for this job");
    if (!lua_isyieldable(L))
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "await: not in a coroutine that can yield "
                                 "(use job:wait)");
    lua_pushthread(L);
    j->co = luaL_ref(L, LUA_REGISTRYINDEX);
    return lua_yieldk(L, 0, 0, await_k);
}

/* job:cancel(): true when the job was canceled before it started (it
 * ends with CAPFFI_ECANCELED); false when it is running (it finishes
 * normally) or has ended. */
static int
job_cancel(lua_State *L)
{
    struct ljob *j = check_job(L, 1, true);
    if (j->ended) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int rc = capffi_job_cancel(j->job);
    if (rc && rc != CAPFFI_EBUSY)
        return capffi_lua__fail(L, j->st, rc, "cancel");
    if (!rc)
        mark_ended(j); /* capffi runs no handler for a canceled job */
    lua_pushboolean(L, rc == CAPFFI_OK);
    return 1;
}

/* job:done(): whether the job has ended, as far as the loop has seen. */
static int
job_isdone(lua_State *L)
{
    struct ljob *j = check_job(L, 1, true);
    lua_pushboolean(L, j->ended);
    return 1;
}

/*
 * job:close(), __close, __gc: free the job. One that has not ended is
 * detached (capffi_job_free): it runs or stays canceled, its buffers come
 * back when it ends; a coroutine awaiting it is resumed by the next
 * capffi.poll with CAPFFI_ECLOSED. Twice is fine.
 */
static int
job_close(lua_State *L)
{
    struct ljob *j = luaL_checkudata(L, 1, CAPFFI_LUA_JOB);
    if (!j->job)
        return 0;
    if (j->waiting) /* a callback run by job:wait closes the job it waits for */
        return capffi_lua__error(L, CAPFFI_EBUSY,
                                 "close: job:wait is waiting for this job; "
                                 "close it once the wait has returned");
    if (j->st->ctx)
        capffi_job_free(j->job);
    j->job = NULL;
    if (!j->ended)
        mark_ended(j); /* for the anchor and an awaiting coroutine */
    return 0;
}

static int
job_gc(lua_State *L)
{
    struct ljob *j = luaL_checkudata(L, 1, CAPFFI_LUA_JOB);
    unlist(j);
    if (j->job && j->st->ctx)
        capffi_job_free(j->job);
    j->job = NULL;
    return 0;
}

static int
job_tostring(lua_State *L)
{
    struct ljob *j = luaL_checkudata(L, 1, CAPFFI_LUA_JOB);
    lua_pushfstring(L, "capffi.job(%s, %s)", j->f->name,
                    !j->job    ? "closed"
                    : j->ended ? "ended"
                               : "pending");
    return 1;
}

void
capffi_lua__job_init(lua_State *L)
{
    lua_pushcfunction(L, async_call);
    lua_setfield(L, LUA_REGISTRYINDEX, CAPFFI_LUA__ASYNC_CALL);
    static const luaL_Reg methods[] = {
        { "wait", job_wait },     { "await", job_await },
        { "cancel", job_cancel }, { "done", job_isdone },
        { "close", job_close },   { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__gc", job_gc },
        { "__close", job_close },
        { "__tostring", job_tostring },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_JOB, methods, meta);
    lua_pop(L, 1);

    struct ended *list = lua_newuserdatauv(L, sizeof *list, 0);
    list->head = list->tail = NULL;
    lua_setfield(L, LUA_REGISTRYINDEX, ENDED_LIST);

    /* f:async(...): functions get a metatable whose __index knows bound
     * functions, unless the host gave functions one of its own. */
    lua_pushcfunction(L, fn_async);
    if (!lua_getmetatable(L, -1)) {
        lua_createtable(L, 0, 2);
        lua_pushcfunction(L, fn_index);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "capffi.function");
        lua_setfield(L, -2, "__metatable");
        lua_setmetatable(L, -2);
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
