/*
 * types/type.c - named struct types: capffi.type, capffi.sizeof and
 * capffi.offsetof for the names the context sees, tok:type, tok:sizeof and
 * tok:offsetof for the names a token sees (where it hides a context name
 * of the same spelling: capffi_type_define_tok; H7).
 */
#include "types/types.h"

/* Define the type named at idx with the layout at idx + 1, for the
 * context (tok NULL) or for what is made through tok. */
static int
define(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
       int idx)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *name = capffi_lua__check_string(L, idx, "type: name");
    const char *layout = capffi_lua__check_string(L, idx + 1, "type: layout");
    int rc = tok ? capffi_type_define_tok(ctx, tok, name, layout)
                 : capffi_type_define(ctx, name, layout);
    if (rc)
        return capffi_lua__fail(L, st, rc, "type");
    return 0;
}

/* Push the size and alignment of the type at idx, with the names the
 * context (tok NULL) or tok sees. */
static int
size_of(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
        int idx)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *type = capffi_lua__check_string(L, idx, "sizeof");
    size_t size, align;
    int rc = tok ? capffi_type_size_tok(&size, &align, ctx, tok, type)
                 : capffi_type_size(&size, &align, ctx, type);
    if (rc)
        return capffi_lua__fail(L, st, rc, "sizeof");
    lua_pushinteger(L, (lua_Integer)size);
    lua_pushinteger(L, (lua_Integer)align);
    return 2;
}

/* Push the offset of the field named at idx + 1 in the type at idx, with
 * the names the context (tok NULL) or tok sees. */
static int
offset_of(lua_State *L, struct capffi_lua__state *st, const capffi_token *tok,
          int idx)
{
    capffi_ctx *ctx = capffi_lua__ctx(L, st);
    const char *type = capffi_lua__check_string(L, idx, "offsetof: type");
    const char *field = capffi_lua__check_string(L, idx + 1, "offsetof: field");
    size_t off;
    int rc = tok ? capffi_type_offset_tok(&off, ctx, tok, type, field)
                 : capffi_type_offset(&off, ctx, type, field);
    if (rc)
        return capffi_lua__fail(L, st, rc, "offsetof");
    lua_pushinteger(L, (lua_Integer)off);
    return 1;
}

/* capffi.type(name, layout) and capffi.class(name, layout): one
 * function, since a class is a named layout (the layout language gains
 * readonly fields, fixed arrays, *NAME fields and "opaque"). */
int
capffi_lua__type_define(lua_State *L)
{
    return define(L, capffi_lua__upstate(L), NULL, 1);
}

/* capffi.sizeof(type): size and alignment. */
int
capffi_lua__type_sizeof(lua_State *L)
{
    return size_of(L, capffi_lua__upstate(L), NULL, 1);
}

/* capffi.offsetof(type, field) */
int
capffi_lua__offsetof(lua_State *L)
{
    return offset_of(L, capffi_lua__upstate(L), NULL, 1);
}

/*
 * tok:type(name, layout), tok:class(name, layout): a struct type or class
 * that only what is made through this token (and its descendants) sees,
 * where it hides a capffi.type of the same name (capffi_type_define_tok).
 */
static int
token_type(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    return define(L, t->st, &t->tok, 2);
}

/* tok:sizeof(type): size and alignment with the names the token sees. */
static int
token_sizeof(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    return size_of(L, t->st, &t->tok, 2);
}

/* tok:offsetof(type, field): the field's offset with the names the token
 * sees. */
static int
token_offsetof(lua_State *L)
{
    struct capffi_lua__token *t = capffi_lua__token_check(L, 1);
    return offset_of(L, t->st, &t->tok, 2);
}

void
capffi_lua__type_init(lua_State *L)
{
    static const luaL_Reg token_methods[] = {
        { "type", token_type },
        { "class", token_type },
        { "sizeof", token_sizeof },
        { "offsetof", token_offsetof },
        { NULL, NULL },
    };
    capffi_lua__add_methods(L, CAPFFI_LUA_TOKEN, token_methods);
}
