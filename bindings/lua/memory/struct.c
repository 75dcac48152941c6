/*
 * memory/struct.c - struct values: struct results whose fields are read and
 * written by name.
 *
 * A function bound with `struct = "value"` returns one of these instead
 * of a string. The root value owns a buffer the size of the result, which
 * the call fills, and a read-write view of it; fields are found with
 * capffi_fn_result_field (so names, nested paths and indices mean what
 * they mean in C) and read and written through the view, so every access
 * is bounds-checked by capffi. A nested struct field is a part: a value
 * that shares its root's bytes, keeps its root alive and looks its fields
 * up under its own path.
 *
 * A struct value has no methods, so that no field name is shadowed: its
 * bytes come out through capffi.bytes(s), and it may be passed wherever a
 * struct of its size is expected, as a string or a buffer may
 * (capffi_lua__struct_in).
 */
#include <stdint.h>
#include <string.h>

#include "memory/memory.h"

struct sval {
    capffi_buf *buf;     /* root: the memory; NULL once freed */
    capffi_view *view;   /* root: a read-write view of buf */
    struct sval *root;   /* itself, or the root (user value 2) of a part */
    const capffi_fn *fn; /* the function whose result this is (user value 1) */
    struct capffi_lua__state *st;
    size_t off, size; /* where this value lies in the root */
    char path[];      /* "" for the root, "in" or "a.b" for a part */
};

void
capffi_lua__struct_push(lua_State *L, struct capffi_lua__state *st,
                        const capffi_fn *fn, int fn_idx, void **mem,
                        size_t *len)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    fn_idx = lua_absindex(L, fn_idx);
    struct sval *s = lua_newuserdatauv(L, sizeof *s + 1, 2);
    memset(s, 0, sizeof *s + 1);
    s->root = s;
    s->fn = fn;
    s->st = st;
    s->size = capffi_fn_result_size(fn);
    luaL_setmetatable(L, CAPFFI_LUA_STRUCT);
    lua_pushvalue(L, fn_idx);
    lua_setiuservalue(L, -2, 1);
    int rc = capffi_buf_new(&s->buf, ctx, s->size);
    if (!rc)
        rc = capffi_view_of_buf(&s->view, s->buf,
                                CAPFFI_VIEW_READ | CAPFFI_VIEW_WRITE);
    if (!rc)
        rc = capffi_buf_data(mem, len, s->buf);
    if (rc)
        capffi_lua__fail(L, st, rc, "struct");
}

/* The struct value at idx, its context live; NULL if it is none. */
static struct sval *
test_sval(lua_State *L, int idx)
{
    struct sval *s = luaL_testudata(L, idx, CAPFFI_LUA_STRUCT);
    if (s) {
        capffi_lua__ctx(L, s->st);
        if (!s->root->view)
            capffi_lua__error(L, CAPFFI_ECLOSED,
                              "the struct value's memory was freed");
    }
    return s;
}

static struct sval *
check_sval(lua_State *L, int idx)
{
    capffi_lua__check_object(L, idx, CAPFFI_LUA_STRUCT, "struct value");
    return test_sval(L, idx);
}

/* If the value at idx is a struct value, its bytes (*mem, *len) and
 * true; raises CAPFFI_ECLOSED when its memory is gone. false otherwise. */
static bool
struct_bytes(lua_State *L, int idx, void **mem, size_t *len)
{
    struct sval *s = test_sval(L, idx);
    if (!s)
        return false;
    void *p;
    int rc = capffi_buf_data(&p, NULL, s->root->buf);
    if (rc)
        capffi_lua__fail(L, s->st, rc, "struct");
    *mem = (unsigned char *)p + s->off;
    *len = s->size;
    return true;
}

bool
capffi_lua__struct_in(lua_State *L, struct capffi_lua__state *st, int idx,
                      void **mem, size_t *len, const char *what)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        *mem = (void *)(uintptr_t)lua_tolstring(L, idx, len);
        return true;
    }
    if (struct_bytes(L, idx, mem, len))
        return true;
    struct capffi_lua__buffer *b = capffi_lua__buffer_test(L, idx, true);
    if (!b)
        return false;
    int rc = capffi_buf_data(mem, len, b->buf);
    if (rc)
        capffi_lua__fail(L, st, rc, what);
    return true;
}

/* Find the field named by the key at idx 2 under s's path; pushes the
 * full path. */
static void
lookup(lua_State *L, struct sval *s, capffi_field *f)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        capffi_lua__error(L, CAPFFI_ETYPE,
                          "struct fields are named by strings, got %s",
                          capffi_lua__typename(L, 2));
    if (s->path[0])
        lua_pushfstring(L, "%s.%s", s->path, lua_tostring(L, 2));
    else
        lua_pushvalue(L, 2);
    const char *path = lua_tostring(L, -1);
    int rc = capffi_fn_result_field(f, s->fn, path);
    if (rc)
        capffi_lua__fail(L, s->st, rc, NULL);
}

/* s.NAME: the field's value; a nested struct is a part sharing s's
 * bytes. */
static int
struct_index(lua_State *L)
{
    struct sval *s = check_sval(L, 1);
    capffi_field f;
    lookup(L, s, &f);
    int path = lua_gettop(L);
    if (strcmp(f.type, "struct") == 0) {
        size_t plen;
        const char *p = lua_tolstring(L, path, &plen);
        struct sval *part = lua_newuserdatauv(L, sizeof *part + plen + 1, 2);
        memset(part, 0, sizeof *part);
        part->root = s->root;
        part->fn = s->fn;
        part->st = s->st;
        part->off = f.offset;
        part->size = f.size;
        memcpy(part->path, p, plen + 1);
        luaL_setmetatable(L, CAPFFI_LUA_STRUCT);
        lua_getiuservalue(L, 1, 1);
        lua_setiuservalue(L, -2, 1);
        if (s->root == s)
            lua_pushvalue(L, 1);
        else
            lua_getiuservalue(L, 1, 2);
        lua_setiuservalue(L, -2, 2);
        return 1;
    }
    capffi_value x;
    int rc = capffi_view_get(&x, s->root->view, f.offset, f.type);
    if (rc)
        return capffi_lua__fail(L, s->st, rc, lua_tostring(L, path));
    capffi_lua__scalar_push(L, capffi_lua__kind_of(f.type), &x);
    return 1;
}

/* s.NAME = value: write a scalar field; value converts as a call argument
 * of the field's type does. */
static int
struct_newindex(lua_State *L)
{
    struct sval *s = check_sval(L, 1);
    capffi_field f;
    lookup(L, s, &f);
    const char *path = lua_tostring(L, -1);
    int k = capffi_lua__kind_of(f.type);
    if (!capffi_lua__is_scalar(k))
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "%s: a %s field is set through its own "
                                 "fields",
                                 path, f.type);
    capffi_value x = { .u64 = 0 };
    char why[128];
    int rc = capffi_lua__scalar_in(L, 3, k, false, &x, why, sizeof why);
    if (rc)
        return capffi_lua__error(L, rc, "%s (%s): %s", path, f.type, why);
    if ((rc = capffi_view_set(s->root->view, f.offset, f.type, x)))
        return capffi_lua__fail(L, s->st, rc, path);
    return 0;
}

/* capffi.bytes(s): a copy of a struct value's bytes, as a string. */
int
capffi_lua__struct_tobytes(lua_State *L)
{
    struct sval *s = check_sval(L, 1);
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, s->size);
    int rc = capffi_view_copy(dst, s->root->view, s->off, s->size);
    if (rc)
        return capffi_lua__fail(L, s->st, rc, "bytes");
    luaL_pushresultsize(&b, s->size);
    return 1;
}

static int
struct_len(lua_State *L)
{
    struct sval *s = check_sval(L, 1);
    lua_pushinteger(L, (lua_Integer)s->size);
    return 1;
}

static int
struct_tostring(lua_State *L)
{
    struct sval *s = luaL_checkudata(L, 1, CAPFFI_LUA_STRUCT);
    if (!s->st->ctx || !s->root->view)
        lua_pushliteral(L, "capffi.struct(freed)");
    else if (s->path[0])
        lua_pushfstring(L, "capffi.struct(%s, %I bytes)", s->path,
                        (lua_Integer)s->size);
    else
        lua_pushfstring(L, "capffi.struct(%I bytes)", (lua_Integer)s->size);
    return 1;
}

/* The root frees its view and buffer; a part owns nothing. */
static int
struct_gc(lua_State *L)
{
    struct sval *s = lua_touserdata(L, 1);
    if (s->root == s && s->st->ctx) {
        capffi_view_free(s->view);
        capffi_buf_free(s->buf);
    }
    if (s->root == s) {
        s->view = NULL;
        s->buf = NULL;
    }
    return 0;
}

void
capffi_lua__struct_init(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__index", struct_index }, { "__newindex", struct_newindex },
        { "__len", struct_len },     { "__tostring", struct_tostring },
        { "__gc", struct_gc },       { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_STRUCT, NULL, meta);
    lua_pop(L, 1);
}
