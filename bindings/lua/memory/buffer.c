/*
 * memory/buffer.c - capffi.buffer: host memory native calls may read and write.
 *
 * A buffer userdata owns a capffi_buf. Every access asks capffi for the
 * bytes again (capffi_buf_data) rather than keeping a pointer, so the
 * library's rules for a buffer (freed, and later lent or pinned) apply to
 * Lua code as they do to C. Positions are 1-based and follow string.sub
 * and string.byte; views of a buffer (buf:view, added by view.c) take
 * 0-based byte offsets, as C does.
 *
 * Pins: tok:pointer_of(buf) (pointer.c) pins the buffer, buf:unpin() drops one
 * pin. Freeing a pinned buffer (buf:free(), the collector) is deferred by
 * capffi until the last pin is dropped, so an address native code keeps
 * never dangles while the script still holds a pin. The userdata keeps
 * the handle for buf:unpin() until then, and counts the pins it took so
 * that it never hands capffi a handle that capffi has already released.
 */
#include <limits.h>
#include <string.h>

#include "memory/memory.h"

struct capffi_lua__buffer *
capffi_lua__buffer_test(lua_State *L, int idx, bool live)
{
    struct capffi_lua__buffer *b = luaL_testudata(L, idx, CAPFFI_LUA_BUFFER);
    if (b && live) {
        capffi_lua__ctx(L, b->st);
        if (!b->buf || b->freed)
            capffi_lua__error(L, CAPFFI_ECLOSED, "the buffer was freed");
    }
    return b;
}

/* The buffer at idx (live, as capffi_lua__buffer_test), or a
 * CAPFFI_ETYPE error. */
static struct capffi_lua__buffer *
want_buffer(lua_State *L, int idx, bool live)
{
    capffi_lua__check_object(L, idx, CAPFFI_LUA_BUFFER, "buffer");
    return capffi_lua__buffer_test(L, idx, live);
}

/* The live buffer at idx and its bytes. */
static struct capffi_lua__buffer *
check_buffer(lua_State *L, int idx, unsigned char **data, size_t *len)
{
    struct capffi_lua__buffer *b = want_buffer(L, idx, true);
    void *p;
    int rc = capffi_buf_data(&p, len, b->buf);
    if (rc)
        capffi_lua__fail(L, b->st, rc, "buffer");
    *data = p;
    return b;
}

struct capffi_lua__buffer *
capffi_lua__buffer_push(lua_State *L, struct capffi_lua__state *st, size_t len)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    struct capffi_lua__buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->buf = NULL;
    b->st = st;
    b->pins = 0;
    b->freed = false;
    luaL_setmetatable(L, CAPFFI_LUA_BUFFER);
    int rc = capffi_buf_new(&b->buf, ctx, len);
    if (rc)
        capffi_lua__fail(L, st, rc, "buffer");
    return b;
}

/* capffi.buffer(n) or capffi.buffer(s) */
int
capffi_lua__buffer_new(lua_State *L)
{
    struct capffi_lua__state *st = capffi_lua__upstate(L);
    capffi_lua__ctx(L, st);
    const char *init = NULL;
    size_t len;
    if (lua_type(L, 1) == LUA_TSTRING) {
        init = lua_tolstring(L, 1, &len);
    } else {
        lua_Integer n = capffi_lua__check_integer(L, 1, "buffer: size");
        if (n < 0)
            return capffi_lua__error(L, CAPFFI_ERANGE,
                                     "buffer: size %lld is negative",
                                     (long long)n);
        len = (size_t)n;
    }
    struct capffi_lua__buffer *b = capffi_lua__buffer_push(L, st, len);
    if (init && len) {
        void *p;
        int rc = capffi_buf_data(&p, NULL, b->buf);
        if (rc)
            return capffi_lua__fail(L, st, rc, "buffer");
        memcpy(p, init, len);
    }
    return 1;
}

/* Positions i..j (string.sub's rules) as a 0-based start and a count. */
static void
span(lua_State *L, int idx_i, lua_Integer def_i, int idx_j, lua_Integer def_j,
     size_t len, size_t *start, size_t *count)
{
    lua_Integer n = (lua_Integer)len;
    lua_Integer i = lua_isnoneornil(L, idx_i)
                        ? def_i
                        : capffi_lua__check_integer(L, idx_i, "buffer: i");
    lua_Integer j = lua_isnoneornil(L, idx_j)
                        ? def_j
                        : capffi_lua__check_integer(L, idx_j, "buffer: j");
    if (i < 0)
        i = i < -n ? 1 : n + i + 1;
    else if (i == 0)
        i = 1;
    if (j < 0)
        j = j < -n ? 0 : n + j + 1;
    else if (j > n)
        j = n;
    *start = (size_t)(i - 1);
    *count = i > j ? 0 : (size_t)(j - i + 1);
}

/* buf:tostring([i [, j]]): the bytes i..j as a string. */
static int
buffer_tostring(lua_State *L)
{
    unsigned char *data;
    size_t len, start, count;
    check_buffer(L, 1, &data, &len);
    span(L, 2, 1, 3, -1, len, &start, &count);
    lua_pushlstring(L, count ? (const char *)data + start : "", count);
    return 1;
}

/* buf:bytes([i [, j]]): the byte values i..j (string.byte's rules). */
static int
buffer_bytes(lua_State *L)
{
    unsigned char *data;
    size_t len, start, count;
    check_buffer(L, 1, &data, &len);
    lua_Integer i = lua_isnoneornil(L, 2)
                        ? 1
                        : capffi_lua__check_integer(L, 2, "buffer: i");
    span(L, 2, 1, 3, i, len, &start, &count);
    if (count >= (size_t)INT_MAX || !lua_checkstack(L, (int)count))
        return capffi_lua__error(L, CAPFFI_EBOUNDS,
                                 "bytes: %zu values are too many", count);
    for (size_t k = 0; k < count; k++)
        lua_pushinteger(L, data[start + k]);
    return (int)count;
}

/* buf:write(i, s): copy s into the buffer from position i. */
static int
buffer_write(lua_State *L)
{
    unsigned char *data;
    size_t len, slen;
    check_buffer(L, 1, &data, &len);
    lua_Integer i = capffi_lua__check_integer(L, 2, "write: i");
    capffi_lua__check_string(L, 3, "write: s");
    const char *s = lua_tolstring(L, 3, &slen);
    if (i < 1 || (uint64_t)(i - 1) > len || slen > len - (size_t)(i - 1))
        return capffi_lua__error(L, CAPFFI_EBOUNDS,
                                 "write: %zu bytes at position %lld do not fit "
                                 "in %zu",
                                 slen, (long long)i, len);
    memcpy(data + (i - 1), s, slen);
    lua_settop(L, 1);
    return 1;
}

/*
 * buf:free(); later uses raise CAPFFI_ECLOSED. Freeing twice is fine.
 * Pins from tok:pointer_of and views of the buffer defer the release of
 * the bytes (capffi keeps them until the last unpin or view:free()).
 */
static int
buffer_free(lua_State *L)
{
    struct capffi_lua__buffer *b = want_buffer(L, 1, false);
    if (b->buf && !b->freed && b->st->ctx)
        capffi_buf_free(b->buf);
    b->freed = true;
    if (!b->pins)
        b->buf = NULL;
    return 0;
}

/* buf:unpin(): drop one pin taken by tok:pointer_of. After the last one,
 * native code must not use the address; a freed buffer is released. */
static int
buffer_unpin(lua_State *L)
{
    struct capffi_lua__buffer *b = want_buffer(L, 1, false);
    capffi_lua__ctx(L, b->st);
    if (!b->pins)
        return capffi_lua__error(L, CAPFFI_EINVAL,
                                 "unpin: the buffer has no pin from "
                                 "pointer_of");
    int rc = capffi_buf_unpin(b->buf);
    if (rc)
        return capffi_lua__fail(L, b->st, rc, "unpin");
    if (--b->pins == 0 && b->freed)
        b->buf = NULL;
    return 0;
}

/* buf:pins(): the pins (from pointer_of) plus the views holding the
 * buffer; 0 once its bytes are released. Works after buf:free(). */
static int
buffer_pins(lua_State *L)
{
    struct capffi_lua__buffer *b = want_buffer(L, 1, false);
    capffi_lua__ctx(L, b->st);
    lua_pushinteger(L, b->buf ? (lua_Integer)capffi_buf_pins(b->buf) : 0);
    return 1;
}

static int
buffer_len(lua_State *L)
{
    unsigned char *data;
    size_t len;
    check_buffer(L, 1, &data, &len);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

static int
buffer_tostr(lua_State *L)
{
    struct capffi_lua__buffer *b = luaL_checkudata(L, 1, CAPFFI_LUA_BUFFER);
    size_t len = 0;
    int rc = !b->buf || b->freed || !b->st->ctx
                 ? CAPFFI_EINVAL
                 : capffi_buf_data(NULL, &len, b->buf);
    if (rc == CAPFFI_EBUSY)
        lua_pushliteral(L, "capffi.buffer(lent)");
    else if (rc)
        lua_pushliteral(L, "capffi.buffer(freed)");
    else
        lua_pushfstring(L, "capffi.buffer(%I bytes)", (lua_Integer)len);
    return 1;
}

void
capffi_lua__buffer_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "tostring", buffer_tostring },
        { "bytes", buffer_bytes },
        { "write", buffer_write },
        { "free", buffer_free },
        { "unpin", buffer_unpin },
        { "pins", buffer_pins },
        { NULL, NULL },
    };
    static const luaL_Reg meta[] = {
        { "__len", buffer_len },
        { "__gc", buffer_free },
        { "__close", buffer_free },
        { "__tostring", buffer_tostr },
        { NULL, NULL },
    };
    capffi_lua__new_class(L, CAPFFI_LUA_BUFFER, methods, meta);
    lua_pop(L, 1);
}
