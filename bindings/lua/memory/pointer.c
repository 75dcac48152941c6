/*
 * memory/pointer.c - tok:pointer_of and tok:pointer_from: addresses for
 * native code, through a token's pointer right. An address of a buffer
 * pins it (buffer.c); an address made from an integer is whatever the
 * script says it is, which is why it needs the right.
 */
#include "memory/memory.h"

/*
 * tok:pointer_of(buf): the address of the buffer's bytes, for native code
 * to keep beyond a call (CAPFFI_RIGHT_POINTER). Pins the buffer: its bytes
 * stay until a matching buf:unpin(), even across buf:free(). nil for an
 * empty buffer, which is pinned all the same.
 */
static int
token_pointer_of(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    struct capffi_lua__buffer *b = capffi_lua__buffer_test(L, 2, true);
    if (!b)
        return capffi_lua__error(L, CAPFFI_ETYPE,
                                 "pointer_of: expected a capffi buffer, got %s",
                                 capffi_lua__typename(L, 2));
    void *p;
    int rc = capffi_ptr_of(&p, ctx, &t->tok, b->buf);
    if (rc)
        return capffi_lua__fail(L, t->st, rc, "pointer_of");
    b->pins++;
    capffi_lua__scalar_push(L, CAPFFI_LUA__POINTER, &(capffi_value){ .p = p });
    return 1;
}

/* tok:pointer_from(addr): the pointer at an integer address
 * (CAPFFI_RIGHT_POINTER); nil for 0. addr converts as a usize argument. */
static int
token_pointer_from(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    capffi_ctx *ctx = capffi_lua__ctx(L, t->st);
    capffi_value a;
    char why[128];
    int rc = capffi_lua__scalar_in(L, 2, CAPFFI_LUA__U64, false, &a, why,
                                   sizeof why);
    if (rc)
        return capffi_lua__error(L, rc, "pointer_from: %s", why);
    void *p;
    if ((rc = capffi_ptr_from_addr(&p, ctx, &t->tok, (uintptr_t)a.u64)))
        return capffi_lua__fail(L, t->st, rc, "pointer_from");
    capffi_lua__scalar_push(L, CAPFFI_LUA__POINTER, &(capffi_value){ .p = p });
    return 1;
}

void
capffi_lua__pointer_init(lua_State *L)
{
    static const luaL_Reg token_methods[] = {
        { "pointer_of", token_pointer_of },
        { "pointer_from", token_pointer_from },
        { NULL, NULL },
    };
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
