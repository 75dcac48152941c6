/*
 * memory/memory.h - the memory layer of the Lua binding: buffers
 * (buffer.c), pointers to them and from addresses (pointer.c), views
 * (view.c), instances of classes (object.c) and struct values
 * (struct.c). Above types/; buffers are its lowest file, which the
 * others use.
 */
#ifndef CAPFFI_LUA_MEMORY_H
#define CAPFFI_LUA_MEMORY_H

#include "types/types.h"

/* What this header declares is the module's own: hidden from the shared
 * object's symbol table however the module is built (meson hides it with
 * its flags; `luarocks make` uses its own), so only public names
 * (luaopen_capffi, capffi/lua.h) are exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- buffer.c: capffi.buffer ------------------------------------------- */

#define CAPFFI_LUA_BUFFER "capffi.buffer" /* metatable of buffers */

/*
 * A buffer userdata. freed: buf:free() or the collector ran; the bytes may
 * still be held by pins. pins: the pins taken through tok:pointer_of and
 * not yet dropped by buf:unpin(); while there are any, buf stays the
 * handle capffi_buf_unpin needs, even after the free. buf is NULL once
 * the handle is gone (freed with no pin left).
 */
struct capffi_lua__buffer {
    capffi_buf *buf;
    struct capffi_lua__state *st;
    size_t pins;
    bool freed;
};

/* Register the buffer class. */
void capffi_lua__buffer_init(lua_State *L);

/* capffi.buffer(n) or capffi.buffer(s) (upvalue 1: the state userdata) */
int capffi_lua__buffer_new(lua_State *L);

/* The buffer userdata at idx or NULL; raises CAPFFI_ECLOSED for a freed
 * one when live is true. */
struct capffi_lua__buffer *capffi_lua__buffer_test(lua_State *L, int idx,
                                                   bool live);

/* Push a new buffer userdata of len zero bytes; raises on failure. */
struct capffi_lua__buffer *
capffi_lua__buffer_push(lua_State *L, struct capffi_lua__state *st, size_t len);

/* ---- pointer.c: tok:pointer_of, tok:pointer_from ----------------------- */

/* Add tok:pointer_of and tok:pointer_from to the token class. */
void capffi_lua__pointer_init(lua_State *L);

/* ---- view.c: views ------------------------------------------------------ */

#define CAPFFI_LUA_VIEW "capffi.view" /* metatable of views */

/* Register the view class; add buf:view and tok:view. */
void capffi_lua__view_init(lua_State *L);

/* ---- object.c: instances of classes (SafeFFI) --------------------------- */

#define CAPFFI_LUA_OBJECT "capffi.instance" /* metatable of instances */

/* An instance userdata (or a part of one: a nested struct or array). */
struct capffi_lua__obj;

/* Register the instance class; add tok:new. */
void capffi_lua__object_init(lua_State *L);

/* Module functions: capffi.new and capffi.leaks (upvalue 1: the state
 * userdata), capffi.free, capffi.classof. */
int capffi_lua__obj_new(lua_State *L);
int capffi_lua__obj_leaks(lua_State *L);
int capffi_lua__obj_free(lua_State *L);
int capffi_lua__obj_classof(lua_State *L);

/*
 * Push an instance userdata for o: a call's result or out-parameter.
 * keep_idx (0: none) is what it keeps alive (the function that returned
 * it); tok is the principal whose class names its fields are read with
 * (NULL: the context's). Takes o: freed with the userdata.
 */
void capffi_lua__obj_push(lua_State *L, struct capffi_lua__state *st,
                          capffi_obj *o, int keep_idx, const capffi_token *tok);

/*
 * A callback's instance arguments. Each callback with instance parameters
 * has a record (a userdata it keeps) of what each parameter is, worked
 * out on its first invocation, and of the invocations running. An
 * argument belongs to its invocation: it is never freed here, and once
 * the invocation has ended every use raises CAPFFI_ECLOSED.
 */
#define CAPFFI_LUA_ARG "capffi.instance.arg" /* metatable of arguments */
struct capffi_lua__args;

/* Push a new record for a callback with nparams parameters. */
void capffi_lua__args_new(lua_State *L, int nparams);

/* An invocation begins: its arguments are live until
 * capffi_lua__args_end. rec is the record's index. Raises on failure
 * (nothing begun then). */
struct capffi_lua__args *capffi_lua__args_begin(lua_State *L, int rec);

/* Push the argument for parameter param (an index from 0) of the
 * invocation begun last: o, with the class names tok sees. Raises on
 * failure. */
void capffi_lua__args_push(lua_State *L, struct capffi_lua__state *st, int rec,
                           int param, capffi_obj *o, const capffi_token *tok);

/* The invocation begun last ends; its arguments are ended. Touches no
 * Lua value (the arguments may be garbage already) and raises
 * nothing. */
void capffi_lua__args_end(struct capffi_lua__args *a);

/*
 * The instance at idx as an argument: nil as NULL, an instance as its
 * capffi_obj, and true; false for any other value. Raises for a part, a
 * freed instance (CAPFFI_EINVAL) or a callback's argument past its
 * callback (CAPFFI_ECLOSED).
 */
bool capffi_lua__obj_arg(lua_State *L, int idx, capffi_obj **out);

/* ---- struct.c: struct values -------------------------------------------- */

#define CAPFFI_LUA_STRUCT "capffi.struct" /* metatable of struct values */

/* Register the struct value class. */
void capffi_lua__struct_init(lua_State *L);

/* capffi.bytes(s): a copy of a struct value's bytes, as a string. */
int capffi_lua__struct_tobytes(lua_State *L);

/*
 * Push a struct value for the struct result of fn (whose function
 * userdata is at fn_idx, kept alive by it): zeroed memory of the result's
 * size, which the caller passes as ret->agg (*mem, *len) and the call
 * fills. Raises on failure.
 */
void capffi_lua__struct_push(lua_State *L, struct capffi_lua__state *st,
                             const capffi_fn *fn, int fn_idx, void **mem,
                             size_t *len);

/*
 * A struct given at idx, as a string, a buffer or a struct value: its
 * bytes in *mem and *len (whether that is the size wanted is the caller's
 * to check), and true. false, changing nothing, for any other value.
 * Raises CAPFFI_ECLOSED for a freed buffer or struct value, and capffi's
 * error ("what: ...") when a buffer's bytes cannot be had.
 */
bool capffi_lua__struct_in(lua_State *L, struct capffi_lua__state *st, int idx,
                           void **mem, size_t *len, const char *what);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
