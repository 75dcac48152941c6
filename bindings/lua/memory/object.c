/*
 * memory/object.c - instances of classes (SafeFFI) as Lua values:
 * capffi.new, tok:new, capffi.free, capffi.classof, capffi.leaks, and the
 * instance userdata that calls, out-parameters and callbacks hand out.
 *
 * An instance userdata holds a capffi_obj and reads and writes it only
 * through capffi's field paths, so every access is checked by capffi
 * (class, bounds, readonly, the library or token behind it): the address
 * never reaches Lua. obj.x and obj.x = v map to the path "x", arr[i] to
 * "[i]" (0-based, as C paths are), a scalar instance's p[0] to "".
 * A nested struct or an array field reads as a part: a userdata naming a
 * path inside the instance ("origin", "name"), indexed the same way, that
 * keeps the instance alive and is never freed itself.
 *
 * Speed: each (class, field) gets an entry, made on the first access and
 * cached in a table per class: what the field holds and, for numbers, a
 * compiled capffi_accessor, so a repeated obj.x is a table lookup and
 * capffi_obj_read. capffi checks on every read that the instance is of
 * the accessor's class; a refusal for that reason falls back to the path.
 *
 * What a field holds is read from capffi_type_field with the names the
 * instance's principal sees (the token it was made through, or the
 * context), so that a class a token defined is read with its own layout.
 * capffi_type_field gives "pointer" for a cstring, a *NAME and a raw
 * pointer field alike; capffi_obj_accessor tells them apart (it compiles
 * raw pointers, and refuses the other two naming which they are).
 *
 * Lifetimes: an instance is freed once, by obj:free() (capffi.free), by a
 * to-be-closed variable or by the collector, whichever comes first; an
 * owned one's destructor runs then (capffi_obj_free). A second obj:free()
 * raises instead of reaching capffi. A callback's instance argument
 * (callback/callback.c) is the invocation's: it is never freed here, and
 * once its callback has returned every use raises CAPFFI_ECLOSED, since
 * its capffi_obj lived in that invocation.
 *
 * Callbacks' arguments are made on every invocation, so they are cheap:
 * what each parameter is (class, array or not, the accessor of a
 * scalar's p[0]) is worked out once per callback and kept in its record
 * (capffi_lua__args_*), with the user values the general path needs; an
 * argument is a small userdata with that record as its one user value
 * and a metatable without __gc, whose p[0] and arr[i] on numbers and
 * cstrings go straight to capffi. Whether its invocation still runs is
 * read from the record (the invocations running, by depth and serial
 * number), so ending an invocation writes nothing into its arguments.
 */
#include <stdio.h>
#include <string.h>

#include "memory/memory.h"

/* Registry key: the field caches, by principal and class. */
#define CACHES "capffi.instance.caches"

enum { LIFE_LIVE, LIFE_FREED, LIFE_ENDED };

struct capffi_lua__obj {
    capffi_obj *o; /* NULL once freed */
    struct capffi_lua__state *st;
    struct capffi_lua__obj *root; /* itself; for a part, its instance */
    uint8_t life;                 /* LIFE_*, of an instance */
    bool part;                    /* a struct or array inside root */
    bool frame;                   /* a callback's argument */
    bool array;                   /* indexed by integers from 0 */
    bool scalar;                  /* an instance of a scalar class: p[0] */
    bool named;                   /* a part whose path holds names only */
    bool has_tok;                 /* tok is the principal; else the context */
    uint8_t param;                /* a callback's argument: its parameter */
    capffi_token tok;
    /* A callback's argument: its callback's record (kept by the one user
     * value), and the invocation it belongs to, live while
     * args->live[depth] == serial. */
    struct capffi_lua__args *args;
    size_t depth;
    uint64_t serial;
};

/* The user values of an instance userdata. A callback's argument has one,
 * its record, which holds them for all of its callback's arguments. */
enum {
    UV_CACHE = 1, /* the field cache of the class */
    UV_KEEP,      /* what it keeps alive: its library's function, the
                     instance it was read from; a part: its instance */
    UV_PATH,      /* a part: its path */
    UV_TYPE,      /* an instance: the type its fields are looked up in */
    UV_CLASS,     /* an instance: its class name */
    UV_COUNT = UV_CLASS
};

/* What a field holds: a cache entry. */
enum { E_VALUE, E_OBJECT, E_PART };

struct entry {
    uint8_t what; /* E_* */
    uint8_t kind; /* E_VALUE: enum capffi_lua__kind */
    bool acc_ok;  /* acc compiled (a number field, a path of names) */
    capffi_accessor acc;
};

/*
 * The record of a callback's instance parameters: what each one is,
 * worked out from its first instance (its class, array or not, and for a
 * scalar class the compiled accessor of p[0]) so that an invocation hands
 * out each argument as a small userdata with one user value, and reads
 * p[0] and arr[i] without a lookup; and the invocations running, so that
 * an argument knows whether its own still runs without being written to
 * when it ends (it may be garbage by then).
 *
 * User values: ARGS_LIVE the array live points into, ARGS_META the
 * arguments' metatable, then per parameter its field cache, lookup type
 * and class name (arg_uv).
 */
enum { ARGS_LIVE = 1, ARGS_META, ARGS_PARAMS };

struct shape {
    bool known;   /* worked out (from the first non-nil argument) */
    bool array;   /* an array instance */
    bool scalar;  /* a single element of a scalar class */
    bool values;  /* elements are numbers or cstrings, read by index */
    bool acc_ok;  /* acc compiled: a scalar instance's p[0] */
    uint8_t kind; /* values: enum capffi_lua__kind of the elements */
    capffi_accessor acc;
};

struct capffi_lua__args {
    uint64_t serial; /* of the last invocation begun */
    size_t depth;    /* invocations running (nested) */
    size_t cap;      /* of live */
    uint64_t *live;  /* live[d]: the serial of the one running at depth d */
    int nparams;
    struct shape shape[];
};

/* The record's user value holding which (UV_CACHE, UV_TYPE, UV_CLASS) of
 * parameter param. */
static int
arg_uv(int param, int which)
{
    return ARGS_PARAMS + 3 * param +
           (which == UV_CACHE  ? 0
            : which == UV_TYPE ? 1
                               : 2);
}

/* Where an instance is in its life; a callback's argument is ended once
 * its invocation is no longer running. */
static inline uint8_t
life_of(const struct capffi_lua__obj *r)
{
    const struct capffi_lua__args *a = r->args;
    if (a && !(r->depth < a->depth && a->live[r->depth] == r->serial))
        return LIFE_ENDED;
    return r->life;
}

/* Push the user value which of the instance (not a part) lo at ud: a
 * callback's argument's from its record. */
static int
push_uv(lua_State *L, const struct capffi_lua__obj *lo, int ud, int which)
{
    if (!lo->args)
        return lua_getiuservalue(L, ud, which);
    lua_getiuservalue(L, ud, 1);
    int t = lua_getiuservalue(L, -1, arg_uv(lo->param, which));
    lua_remove(L, -2);
    return t;
}

/* ---- the userdata ------------------------------------------------------ */

/* The instance (or part, or callback's argument) at idx, or NULL. */
static struct capffi_lua__obj *
test_obj(lua_State *L, int idx)
{
    struct capffi_lua__obj *lo = luaL_testudata(L, idx, CAPFFI_LUA_OBJECT);
    return lo ? lo : luaL_testudata(L, idx, CAPFFI_LUA_ARG);
}

static struct capffi_lua__obj *
check_obj(lua_State *L, int idx)
{
    struct capffi_lua__obj *lo = test_obj(L, idx);
    if (!lo)
        capffi_lua__error(L, CAPFFI_ETYPE, "expected a capffi instance, got %s",
                          capffi_lua__typename(L, idx));
    return lo;
}

/* The class name of the instance lo is in (for messages). */
static const char *
class_of(lua_State *L, int ud)
{
    struct capffi_lua__obj *lo = lua_touserdata(L, ud);
    if (lo->part) {
        lua_getiuservalue(L, ud, UV_KEEP);
        push_uv(L, lo->root, lua_gettop(L), UV_CLASS);
        lua_remove(L, -2);
    } else {
        push_uv(L, lo, ud, UV_CLASS);
    }
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the string stays in the user value */
    return s ? s : "?";
}

/* The capffi_obj behind the instance or part lo (at ud), or an error: a
 * freed instance CAPFFI_EINVAL, a callback's argument after its callback
 * CAPFFI_ECLOSED, a closed context CAPFFI_ECLOSED. */
static capffi_obj *
live(lua_State *L, struct capffi_lua__obj *lo, int ud)
{
    const struct capffi_lua__obj *r = lo->root;
    capffi_lua__ctx(L, lo->st);
    uint8_t life = life_of(r);
    if (life == LIFE_FREED)
        capffi_lua__error(L, CAPFFI_EINVAL, "the instance of %s was freed",
                          class_of(L, ud));
    if (life == LIFE_ENDED)
        capffi_lua__error(L, CAPFFI_ECLOSED,
                          "the instance of %s was a callback's argument: "
                          "it is valid only while its callback runs",
                          class_of(L, ud));
    return r->o;
}

/* Push the field cache for the class whose lookup type is at type_idx,
 * as the principal tok (NULL: the context) sees it; array instances of
 * a class have a cache of their own (their paths start with an index). */
static void
push_cache(lua_State *L, const capffi_token *tok, int type_idx, bool array)
{
    type_idx = lua_absindex(L, type_idx);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, CACHES);
    if (tok)
        lua_pushfstring(L, "%p:%s%s", (void *)(uintptr_t)tok->id,
                        lua_tostring(L, type_idx), array ? "[]" : "");
    else
        lua_pushfstring(L, ":%s%s", lua_tostring(L, type_idx),
                        array ? "[]" : "");
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TTABLE) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* The type an instance's fields are looked up in: its class, or for an
 * unnamed struct made by capffi.new the struct text itself (without the
 * [N] of an array). */
static void
push_lookup_type(lua_State *L, const char *cls, const char *made_as)
{
    if (made_as && strcmp(cls, "struct") == 0) {
        const char *p = made_as;
        for (;;) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
            if (*p != '[')
                break;
            const char *q = strchr(p, ']');
            if (!q)
                break;
            p = q + 1;
        }
        lua_pushstring(L, p);
    } else {
        lua_pushstring(L, cls);
    }
}

static struct capffi_lua__obj *
push_instance(lua_State *L, struct capffi_lua__state *st, capffi_obj *o,
              int keep_idx, const capffi_token *tok, const char *made_as)
{
    keep_idx = keep_idx ? lua_absindex(L, keep_idx) : 0;
    struct capffi_lua__obj *lo = lua_newuserdatauv(L, sizeof *lo, UV_COUNT);
    memset(lo, 0, sizeof *lo);
    lo->o = o;
    lo->st = st;
    lo->root = lo;
    lo->life = LIFE_LIVE;
    if (tok) {
        lo->has_tok = true;
        lo->tok = *tok;
    }
    luaL_setmetatable(L, CAPFFI_LUA_OBJECT);
    int ud = lua_gettop(L);
    const char *cls = capffi_obj_class(o);
    lua_pushstring(L, cls);
    lua_setiuservalue(L, ud, UV_CLASS);
    size_t n;
    lo->array = capffi_obj_len(&n, o, "") == CAPFFI_OK;
    int k = capffi_lua__kind_of(cls);
    lo->scalar = !lo->array && k >= 0 && k != CAPFFI_LUA__STRUCT;
    push_lookup_type(L, cls, made_as);
    push_cache(L, tok, -1, lo->array);
    lua_setiuservalue(L, ud, UV_CACHE);
    lua_setiuservalue(L, ud, UV_TYPE);
    if (keep_idx) {
        lua_pushvalue(L, keep_idx);
        lua_setiuservalue(L, ud, UV_KEEP);
    }
    return lo;
}

void
capffi_lua__obj_push(lua_State *L, struct capffi_lua__state *st, capffi_obj *o,
                     int keep_idx, const capffi_token *tok)
{
    push_instance(L, st, o, keep_idx, tok, NULL);
}

/* ---- callbacks' arguments ---------------------------------------------- */

void
capffi_lua__args_new(lua_State *L, int nparams)
{
    struct capffi_lua__args *a =
        lua_newuserdatauv(L, sizeof *a + (size_t)nparams * sizeof a->shape[0],
                          ARGS_PARAMS - 1 + 3 * nparams);
    memset(a, 0, sizeof *a + (size_t)nparams * sizeof a->shape[0]);
    a->nparams = nparams;
    luaL_getmetatable(L, CAPFFI_LUA_ARG);
    lua_setiuservalue(L, -2, ARGS_META);
}

struct capffi_lua__args *
capffi_lua__args_begin(lua_State *L, int rec)
{
    struct capffi_lua__args *a = lua_touserdata(L, rec);
    if (a->depth == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        if (cap > SIZE_MAX / sizeof *a->live)
            luaL_error(L, "callbacks nested too deeply");
        uint64_t *live = lua_newuserdatauv(L, cap * sizeof *live, 0);
        if (a->depth)
            memcpy(live, a->live, a->depth * sizeof *live);
        lua_setiuservalue(L, rec, ARGS_LIVE);
        a->live = live;
        a->cap = cap;
    }
    a->live[a->depth++] = ++a->serial;
    return a;
}

void
capffi_lua__args_end(struct capffi_lua__args *a)
{
    a->depth--;
}

/* Work out what parameter param's instances are, from o. */
static void
learn(lua_State *L, int rec, struct capffi_lua__args *a, int param,
      capffi_obj *o, const capffi_token *tok)
{
    struct shape *sh = &a->shape[param];
    const char *cls = capffi_obj_class(o);
    size_t n;
    sh->array = capffi_obj_len(&n, o, "") == CAPFFI_OK;
    int k = capffi_lua__kind_of(cls);
    bool value_class = k >= 0 && k != CAPFFI_LUA__STRUCT;
    sh->scalar = !sh->array && value_class;
    sh->values =
        value_class && (capffi_lua__is_scalar(k) || k == CAPFFI_LUA__CSTRING);
    sh->kind = (uint8_t)(value_class ? k : 0);
    if (sh->scalar && capffi_lua__is_scalar(k))
        sh->acc_ok = capffi_obj_accessor(&sh->acc, o, "") == CAPFFI_OK;
    lua_pushstring(L, cls);
    lua_setiuservalue(L, rec, arg_uv(param, UV_CLASS));
    push_lookup_type(L, cls, NULL);
    push_cache(L, tok, -1, sh->array);
    lua_setiuservalue(L, rec, arg_uv(param, UV_CACHE));
    lua_setiuservalue(L, rec, arg_uv(param, UV_TYPE));
    sh->known = true;
}

void
capffi_lua__args_push(lua_State *L, struct capffi_lua__state *st, int rec,
                      int param, capffi_obj *o, const capffi_token *tok)
{
    rec = lua_absindex(L, rec);
    struct capffi_lua__args *a = lua_touserdata(L, rec);
    const struct shape *sh = &a->shape[param];
    if (!sh->known)
        learn(L, rec, a, param, o, tok);
    struct capffi_lua__obj *lo = lua_newuserdatauv(L, sizeof *lo, 1);
    lo->o = o;
    lo->st = st;
    lo->root = lo;
    lo->life = LIFE_LIVE;
    lo->part = false;
    lo->frame = true;
    lo->array = sh->array;
    lo->scalar = sh->scalar;
    lo->named = false;
    lo->has_tok = true;
    lo->param = (uint8_t)param;
    lo->tok = *tok;
    lo->args = a;
    lo->depth = a->depth - 1;
    lo->serial = a->live[a->depth - 1];
    lua_getiuservalue(L, rec, ARGS_META);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, rec);
    lua_setiuservalue(L, -2, 1);
}

bool
capffi_lua__obj_arg(lua_State *L, int idx, capffi_obj **out)
{
    if (lua_isnil(L, idx)) {
        *out = NULL;
        return true;
    }
    struct capffi_lua__obj *lo = test_obj(L, idx);
    if (!lo)
        return false;
    if (lo->part) {
        lua_getiuservalue(L, idx, UV_PATH);
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "'%s' is a part of an instance of %s, not an "
                          "instance",
                          lua_tostring(L, -1), class_of(L, idx));
    }
    *out = live(L, lo, idx);
    return true;
}

/* ---- paths and entries ------------------------------------------------- */

/*
 * Push the path the key at key_idx names in lo (at ud); *named is set
 * when it holds field names only (its entry may carry an accessor).
 */
static const char *
push_path(lua_State *L, struct capffi_lua__obj *lo, int ud, int key_idx,
          bool *named)
{
    const char *prefix = NULL;
    if (lo->part) {
        lua_getiuservalue(L, ud, UV_PATH);
        prefix = lua_tostring(L, -1);
        lua_pop(L, 1); /* kept by the user value */
    }
    if (lua_type(L, key_idx) == LUA_TSTRING) {
        const char *k = lua_tostring(L, key_idx);
        *named = strchr(k, '[') == NULL && (!lo->part || lo->named);
        if (prefix)
            return lua_pushfstring(L, "%s.%s", prefix, k);
        lua_pushvalue(L, key_idx);
        return k;
    }
    if (!lua_isinteger(L, key_idx))
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "an instance of %s is indexed by a field name or "
                          "an integer, not %s",
                          class_of(L, ud), capffi_lua__typename(L, key_idx));
    lua_Integer i = lua_tointeger(L, key_idx);
    *named = false;
    if (i < 0)
        capffi_lua__error(L, CAPFFI_EBOUNDS,
                          "index %lld of %s: indices start at 0", (long long)i,
                          class_of(L, ud));
    if (lo->array)
        return lua_pushfstring(L, "%s[%I]", prefix ? prefix : "", i);
    if (lo->scalar) {
        if (i != 0)
            capffi_lua__error(L, CAPFFI_EBOUNDS,
                              "index %lld of a single %s: only [0] exists",
                              (long long)i, class_of(L, ud));
        *named = true;
        lua_pushliteral(L, "");
        return "";
    }
    capffi_lua__error(L, CAPFFI_ETYPE,
                      "%s%s%s is not an array: index it by field name",
                      class_of(L, ud), prefix ? "." : "", prefix ? prefix : "");
    return NULL;
}

/* Push the key a path with an index is cached under: the path with each
 * index as #. */
static void
push_cache_key(lua_State *L, const char *path)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *p = path; *p; p++) {
        if (*p == '[') {
            luaL_addstring(&b, "[#]");
            while (*p && *p != ']')
                p++;
            if (!*p)
                break;
        } else {
            luaL_addchar(&b, *p);
        }
    }
    luaL_pushresult(&b);
}

/* Raise the error capffi gave for o's context. */
static int
fail(lua_State *L, struct capffi_lua__obj *lo, int rc)
{
    return capffi_lua__fail(L, lo->st, rc, NULL);
}

/* Fill e for path in o, the instance root at rud. Raises capffi's error
 * for a path o does not have. */
static void
make_entry(lua_State *L, struct capffi_lua__obj *root, int rud, capffi_obj *o,
           const char *path, bool named, struct entry *e)
{
    memset(e, 0, sizeof *e);
    e->what = E_VALUE;
    int k = capffi_lua__kind_of(capffi_obj_class(o));
    if (k >= 0 && k != CAPFFI_LUA__STRUCT) {
        /* A scalar class: its elements are values (capffi checks the
         * rest of the path on each access). */
        e->kind = (uint8_t)k;
    } else {
        capffi_field f;
        int rc = capffi_obj_field(&f, o, path);
        if (rc)
            fail(L, root, rc);
        const char *w = f.type;
        if (strcmp(w, "struct") == 0 || strcmp(w, "array") == 0) {
            e->what = E_PART;
            return;
        }
        if (strcmp(w, "object") == 0) {
            e->what = E_OBJECT;
        } else if (strcmp(w, "pointer") == 0 || strcmp(w, "function") == 0) {
            e->kind = CAPFFI_LUA__POINTER;
        } else if (strcmp(w, "cstring") == 0) {
            e->kind = CAPFFI_LUA__CSTRING;
        } else {
            k = capffi_lua__kind_of(w);
            if (k < 0 || !capffi_lua__is_scalar(k))
                capffi_lua__error(L, CAPFFI_ETYPE,
                                  "'%s' of %s has a type Lua does not "
                                  "read (%s)",
                                  path, class_of(L, rud), w);
            e->kind = (uint8_t)k;
        }
    }
    if (named && e->what == E_VALUE && capffi_lua__is_scalar(e->kind))
        e->acc_ok = capffi_obj_accessor(&e->acc, o, path) == CAPFFI_OK;
}

/* The entry for path (pushed by push_path) in lo at ud: from the cache,
 * or made and cached. */
static const struct entry *
get_entry(lua_State *L, struct capffi_lua__obj *lo, int ud, capffi_obj *o,
          const char *path, bool named)
{
    int path_idx = lua_gettop(L); /* pushed by push_path */
    push_uv(L, lo, ud, UV_CACHE);
    if (named) /* the path is its own key */
        lua_pushvalue(L, path_idx);
    else
        push_cache_key(L, path);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TUSERDATA) {
        const struct entry *e = lua_touserdata(L, -1);
        lua_pop(L, 3);
        return e; /* the cache keeps it */
    }
    lua_pop(L, 1);
    int rud = ud;
    if (lo->part) {
        lua_getiuservalue(L, ud, UV_KEEP);
        rud = lua_gettop(L);
    }
    struct entry *e = lua_newuserdatauv(L, sizeof *e, 0);
    make_entry(L, lo->root, rud, o, path, named, e);
    if (lo->part)
        lua_remove(L, rud);
    lua_rawset(L, -3); /* cache[key] = entry, which the cache keeps */
    lua_pop(L, 1);
    return e;
}

/* Push the root instance userdata of lo at ud. */
static void
push_root(lua_State *L, struct capffi_lua__obj *lo, int ud)
{
    if (lo->part)
        lua_getiuservalue(L, ud, UV_KEEP);
    else
        lua_pushvalue(L, ud);
}

/* Push a part: the struct or array at path (on top) in lo at ud. */
static void
push_part(lua_State *L, struct capffi_lua__obj *lo, int ud, capffi_obj *o,
          bool named)
{
    int path = lua_gettop(L);
    /* Its place is checked now (an index past the end, a closed
     * library), as a read of it would be: capffi refuses to compile a
     * struct or an array with CAPFFI_ETYPE only once the path is found. */
    capffi_accessor acc;
    int rc = capffi_obj_accessor(&acc, o, lua_tostring(L, path));
    if (rc && rc != CAPFFI_ETYPE)
        fail(L, lo, rc);
    struct capffi_lua__obj *p = lua_newuserdatauv(L, sizeof *p, UV_COUNT);
    memset(p, 0, sizeof *p);
    p->st = lo->st;
    p->root = lo->root;
    p->part = true;
    p->named = named;
    size_t n;
    p->array = capffi_obj_len(&n, o, lua_tostring(L, path)) == CAPFFI_OK;
    luaL_setmetatable(L, CAPFFI_LUA_OBJECT);
    push_uv(L, lo, ud, UV_CACHE);
    lua_setiuservalue(L, -2, UV_CACHE);
    push_root(L, lo, ud);
    lua_setiuservalue(L, -2, UV_KEEP);
    lua_pushvalue(L, path);
    lua_setiuservalue(L, -2, UV_PATH);
}

/* ---- reading and writing ----------------------------------------------- */

/* Push the value at path (on top of the stack) of lo at ud. */
static void
read_path(lua_State *L, struct capffi_lua__obj *lo, int ud, capffi_obj *o,
          const char *path, bool named)
{
    const struct entry *e = get_entry(L, lo, ud, o, path, named);
    capffi_value v;
    int rc;
    switch (e->what) {
    case E_PART:
        push_part(L, lo, ud, o, named);
        return;
    case E_OBJECT:
        if ((rc = capffi_obj_get(&v, o, path)))
            fail(L, lo, rc);
        if (!v.obj) {
            lua_pushnil(L);
            return;
        }
        push_root(L, lo, ud);
        {
            struct capffi_lua__obj *r = lo->root;
            push_instance(L, lo->st, v.obj, -1, r->has_tok ? &r->tok : NULL,
                          NULL);
        }
        lua_remove(L, -2);
        return;
    default:
        break;
    }
    rc = e->acc_ok ? capffi_obj_read(&v, o, &e->acc) : CAPFFI_ETYPE;
    if (rc == CAPFFI_ETYPE) /* no accessor, or made for another class */
        rc = capffi_obj_get(&v, o, path);
    if (rc)
        fail(L, lo, rc);
    capffi_lua__value_push(L, e->kind, &v);
}

static void write_table(lua_State *L, int ud, int tab);

/* Write the value at val to path (on top of the stack) of lo at ud. */
static void
write_path(lua_State *L, struct capffi_lua__obj *lo, int ud, capffi_obj *o,
           const char *path, bool named, int val)
{
    const struct entry *e = get_entry(L, lo, ud, o, path, named);
    capffi_value v;
    memset(&v, 0, sizeof v);
    int rc;
    switch (e->what) {
    case E_PART:
        if (!lua_istable(L, val))
            capffi_lua__error(L, CAPFFI_ETYPE,
                              "'%s' of %s is a struct or an array: assign "
                              "its fields, or a table of them, not %s",
                              path, class_of(L, ud),
                              capffi_lua__typename(L, val));
        push_part(L, lo, ud, o, named);
        write_table(L, lua_gettop(L), val);
        lua_pop(L, 1);
        return;
    case E_OBJECT:
        if (!capffi_lua__obj_arg(L, val, &v.obj))
            capffi_lua__error(
                L, CAPFFI_ETYPE, "'%s' of %s takes an instance or nil, not %s",
                path, class_of(L, ud), capffi_lua__typename(L, val));
        if ((rc = capffi_obj_set(o, path, v)))
            fail(L, lo, rc);
        return;
    default:
        break;
    }
    if (e->kind == CAPFFI_LUA__CSTRING) {
        /* capffi refuses: a string's memory would have no owner. */
        if ((rc = capffi_obj_set(o, path, v)))
            fail(L, lo, rc);
        return;
    }
    char why[128];
    rc = capffi_lua__scalar_in(L, val, e->kind, false, &v, why, sizeof why);
    if (rc)
        capffi_lua__error(L, rc, "'%s' of %s: %s", path, class_of(L, ud), why);
    rc = e->acc_ok ? capffi_obj_write(o, &e->acc, v) : CAPFFI_ETYPE;
    if (rc && rc != CAPFFI_ERANGE) /* the path names the field in errors */
        rc = capffi_obj_set(o, path, v);
    if (rc)
        fail(L, lo, rc);
}

/* Write each key = value of the table at tab into the instance or part
 * at ud, as obj[key] = value would. */
static void
write_table(lua_State *L, int ud, int tab)
{
    lua_pushnil(L);
    while (lua_next(L, tab)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, ud);
    }
}

/* The Lua name of a key for the method check: "free" or NULL. */
static bool
is_free_key(lua_State *L, int key)
{
    if (lua_type(L, key) != LUA_TSTRING)
        return false;
    size_t len;
    const char *s = lua_tolstring(L, key, &len);
    return len == 4 && memcmp(s, "free", 4) == 0;
}

static int obj_free(lua_State *L);

/* Whether the instance root (at ud) has a field named free. */
static bool
has_free_field(lua_State *L, struct capffi_lua__obj *root, int ud)
{
    (void)L;
    (void)ud;
    capffi_field f;
    if (root->array || root->scalar || !root->o)
        return false;
    return capffi_obj_field(&f, root->o, "free") == CAPFFI_OK;
}

/*
 * The cached entry of the field named by the string key at 2 of the live
 * instance (not a part) lo at 1, when it has an accessor: the path of a
 * name is its own cache key, so a repeated obj.x costs one lookup. NULL
 * otherwise (the general path then does the rest). Leaves the stack as
 * it was.
 */
static const struct entry *
cached_entry(lua_State *L, struct capffi_lua__obj *lo)
{
    if (lo->part || lua_type(L, 2) != LUA_TSTRING || life_of(lo) != LIFE_LIVE ||
        !lo->st->ctx)
        return NULL;
    int top = lua_gettop(L);
    const struct entry *e = NULL;
    push_uv(L, lo, 1, UV_CACHE);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) == LUA_TUSERDATA) {
        e = lua_touserdata(L, -1); /* the cache keeps it */
        if (e->what != E_VALUE || !e->acc_ok)
            e = NULL;
    }
    lua_settop(L, top);
    return e;
}

/* obj[key] */
static int
obj_index(lua_State *L)
{
    struct capffi_lua__obj *lo = lua_touserdata(L, 1);
    const struct entry *e = cached_entry(L, lo);
    capffi_value v;
    if (e && capffi_obj_read(&v, lo->o, &e->acc) == CAPFFI_OK) {
        capffi_lua__value_push(L, e->kind, &v);
        return 1;
    }
    if (!lo->part && is_free_key(L, 2) &&
        (life_of(lo) != LIFE_LIVE || !lo->st->ctx ||
         !has_free_field(L, lo, 1))) {
        lua_pushcfunction(L, obj_free);
        return 1;
    }
    capffi_obj *o = live(L, lo, 1);
    bool named;
    const char *path = push_path(L, lo, 1, 2, &named);
    read_path(L, lo, 1, o, path, named);
    return 1;
}

/* obj[key] = value */
static int
obj_newindex(lua_State *L)
{
    struct capffi_lua__obj *lo = lua_touserdata(L, 1);
    const struct entry *e = cached_entry(L, lo);
    if (e && capffi_lua__is_scalar(e->kind)) {
        capffi_value v;
        memset(&v, 0, sizeof v);
        char why[128];
        if (!capffi_lua__scalar_in(L, 3, e->kind, false, &v, why, sizeof why) &&
            capffi_obj_write(lo->o, &e->acc, v) == CAPFFI_OK)
            return 0;
    }
    capffi_obj *o = live(L, lo, 1);
    bool named;
    const char *path = push_path(L, lo, 1, 2, &named);
    write_path(L, lo, 1, o, path, named, 3);
    return 0;
}

/* "[i]" into buf (at least 24 bytes), for i >= 0. */
static const char *
index_path(char *buf, lua_Integer i)
{
    char digits[24];
    int n = 0;
    uint64_t u = (uint64_t)i;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    char *p = buf;
    *p++ = '[';
    while (n)
        *p++ = digits[--n];
    *p++ = ']';
    *p = '\0';
    return buf;
}

/*
 * A callback's argument indexed by an integer, on its shape alone: p[0]
 * of a scalar through the accessor compiled once, arr[i] of an array of
 * numbers or cstrings by its path. false, with nothing pushed, when this
 * does not apply or capffi refuses: the general path then does it again
 * and raises what it raises.
 */
static bool
arg_read(lua_State *L, struct capffi_lua__obj *lo)
{
    const struct shape *sh = &lo->args->shape[lo->param];
    if (!sh->values || !lua_isinteger(L, 2) || life_of(lo) != LIFE_LIVE ||
        !lo->st->ctx)
        return false;
    lua_Integer i = lua_tointeger(L, 2);
    capffi_value v;
    int rc;
    if (lo->scalar) {
        if (i != 0 || !sh->acc_ok)
            return false;
        rc = capffi_obj_read(&v, lo->o, &sh->acc);
    } else if (lo->array && i >= 0) {
        char path[32];
        rc = capffi_obj_get(&v, lo->o, index_path(path, i));
    } else {
        return false;
    }
    if (rc)
        return false;
    capffi_lua__value_push(L, sh->kind, &v);
    return true;
}

/* arg[i] = value, as arg_read reads. */
static bool
arg_write(lua_State *L, struct capffi_lua__obj *lo)
{
    const struct shape *sh = &lo->args->shape[lo->param];
    if (!sh->values || !capffi_lua__is_scalar(sh->kind) ||
        !lua_isinteger(L, 2) || life_of(lo) != LIFE_LIVE || !lo->st->ctx)
        return false;
    lua_Integer i = lua_tointeger(L, 2);
    bool scalar = lo->scalar && i == 0 && sh->acc_ok;
    if (!scalar && !(lo->array && i >= 0))
        return false;
    capffi_value v;
    memset(&v, 0, sizeof v);
    char why[128];
    if (capffi_lua__scalar_in(L, 3, sh->kind, false, &v, why, sizeof why))
        return false;
    char path[32];
    int rc = scalar ? capffi_obj_write(lo->o, &sh->acc, v)
                    : capffi_obj_set(lo->o, index_path(path, i), v);
    return rc == CAPFFI_OK;
}

/* arg[key]: the fast path, else obj_index's. */
static int
arg_index(lua_State *L)
{
    if (arg_read(L, lua_touserdata(L, 1)))
        return 1;
    return obj_index(L);
}

/* arg[key] = value */
static int
arg_newindex(lua_State *L)
{
    if (arg_write(L, lua_touserdata(L, 1)))
        return 0;
    return obj_newindex(L);
}

/* #obj: the elements of an array instance or array part; 1 for a scalar
 * instance. */
static int
obj_len(lua_State *L)
{
    struct capffi_lua__obj *lo = lua_touserdata(L, 1);
    capffi_obj *o = live(L, lo, 1);
    if (lo->scalar) {
        lua_pushinteger(L, 1);
        return 1;
    }
    const char *path = "";
    if (lo->part) {
        lua_getiuservalue(L, 1, UV_PATH);
        path = lua_tostring(L, -1);
    }
    size_t n;
    int rc = capffi_obj_len(&n, o, path);
    if (rc)
        return fail(L, lo, rc);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* Release an instance: its destructor runs when it is owned. */
static void
release(struct capffi_lua__obj *lo)
{
    if (lo->life != LIFE_LIVE || lo->part || lo->frame)
        return;
    if (lo->o && lo->st->ctx)
        capffi_obj_free(lo->o);
    lo->o = NULL;
    lo->life = LIFE_FREED;
}

/* obj:free() and capffi.free(obj): once. */
static int
obj_free(lua_State *L)
{
    struct capffi_lua__obj *lo = check_obj(L, 1);
    if (lo->part) {
        lua_getiuservalue(L, 1, UV_PATH);
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "free: '%s' is a part of an instance of %s: "
                                 "free the instance",
                                 lua_tostring(L, -1), class_of(L, 1));
    }
    if (lo->frame)
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "free: an instance of %s that is a "
                                 "callback's argument belongs to its "
                                 "invocation",
                                 class_of(L, 1));
    if (lo->life == LIFE_FREED)
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "free: the instance of %s was already freed",
                                 class_of(L, 1));
    capffi_lua__ctx(L, lo->st);
    release(lo);
    return 0;
}

/* __gc and __close: release it unless it was freed already. */
static int
obj_gc(lua_State *L)
{
    release(lua_touserdata(L, 1));
    return 0;
}

static int
obj_tostring(lua_State *L)
{
    struct capffi_lua__obj *lo = check_obj(L, 1);
    const char *cls = class_of(L, 1);
    if (lo->part) {
        lua_getiuservalue(L, 1, UV_PATH);
        lua_pushfstring(L, "capffi.instance(%s%s%s)", cls,
                        *lua_tostring(L, -1) == '[' ? "" : ".",
                        lua_tostring(L, -1));
        return 1;
    }
    size_t n = 0;
    uint8_t life = life_of(lo);
    if (life == LIFE_FREED)
        lua_pushfstring(L, "capffi.instance(%s, freed)", cls);
    else if (life == LIFE_ENDED)
        lua_pushfstring(L, "capffi.instance(%s, ended)", cls);
    else if (lo->array && lo->st->ctx &&
             capffi_obj_len(&n, lo->o, "") == CAPFFI_OK)
        lua_pushfstring(L, "capffi.instance(%s[%I])", cls, (lua_Integer)n);
    else
        lua_pushfstring(L, "capffi.instance(%s)", cls);
    return 1;
}

/* ---- module functions -------------------------------------------------- */

/* Make an instance of the class named at idx through tok (NULL: the
 * context), set from the table at idx + 1 if any; push it. */
static int
obj_new(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
        int idx)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *cls = capffi_lua__check_string(L, idx, "new: class");
    bool init = capffi_lua__opt_table(L, idx + 1, "new: fields");
    capffi_obj *o;
    int rc = tok ? capffi_obj_new_tok(&o, ctx, tok, cls)
                 : capffi_obj_new(&o, ctx, cls);
    if (rc)
        return capffi_lua__fail(L, st, rc, "new");
    push_instance(L, st, o, 0, tok, cls);
    if (init)
        write_table(L, lua_gettop(L), idx + 1);
    return 1;
}

/* capffi.new(class [, fields]) */
int
capffi_lua__obj_new(lua_State *L)
{
    return obj_new(L, capffi_lua__upstate(L), NULL, 1);
}

/* tok:new(class [, fields]): with the classes the token sees. */
static int
token_new(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_token tok = t->tok;
    return obj_new(L, t->st, &tok, 2);
}

/* capffi.free(obj) */
int
capffi_lua__obj_free(lua_State *L)
{
    return obj_free(L);
}

/* capffi.classof(obj): the class name of an instance (of the instance a
 * part is in). */
int
capffi_lua__obj_classof(lua_State *L)
{
    check_obj(L, 1);
    lua_pushstring(L, class_of(L, 1));
    return 1;
}

/* capffi.leaks(): owned instances not yet freed (capffi_ctx_leaks). */
int
capffi_lua__obj_leaks(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    lua_pushinteger(L, (lua_Integer)capffi_ctx_leaks(ctx));
    return 1;
}

void
capffi_lua__object_init(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__index", obj_index }, { "__newindex", obj_newindex },
        { "__len", obj_len },     { "__gc", obj_gc },
        { "__close", obj_gc },    { "__tostring", obj_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg token_methods[] = {
        { "new", token_new },
        { NULL, NULL },
    };
    /* A callback's argument: no __gc (it is never freed here, and a
     * finalizer per argument would cost every invocation). */
    static const luaL_Reg arg_meta[] = {
        { "__index", arg_index },       { "__newindex", arg_newindex },
        { "__len", obj_len },           { "__close", obj_gc },
        { "__tostring", obj_tostring }, { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_OBJECT, NULL, meta);
    lua_pop(L, 1);
    capffi_lua__new_class(L, CAPFFI_LUA_ARG, NULL, arg_meta);
    lua_pushliteral(L, CAPFFI_LUA_OBJECT); /* what scripts see */
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, CAPFFI_LUA_OBJECT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
