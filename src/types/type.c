/*
 * type.c - the public interface of types: defining named struct types,
 * their sizes and field offsets.
 */
#include "types/sig.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "perm/token.h"
#include "types/names.h"

static bool
valid_name(const char *name)
{
    size_t n = strnlen(name, CAPFFI__NAME_MAX + 1);
    if (n == 0 || n > CAPFFI__NAME_MAX)
        return false;
    if (!(name[0] == '_' || (name[0] >= 'A' && name[0] <= 'Z') ||
          (name[0] >= 'a' && name[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/*
 * Register name for owner (a token id, 0 for the context), its layout
 * parsed as seen from scope. The checks of the caller's arguments come
 * first; the message is set on failure.
 */
static int
define(capffi_ctx *ctx, const struct capffi__tok *scope, uint64_t owner,
       const char *name, const char *layout)
{
    if (!name || !layout)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            name ? "layout" : "name");
    if (!valid_name(name))
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "type name must be an identifier of 1 to %d bytes",
                            CAPFFI__NAME_MAX);
    size_t len = strlen(name);
    if (capffi__type_keyword(name, len) >= 0)
        return capffi__fail(ctx, CAPFFI_EINVAL, "'%s' is a built-in type name",
                            name);
    static const char *const reserved[] = { "out", "own", "by", "readonly",
                                            "opaque" };
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcmp(name, reserved[i]) == 0)
            return capffi__fail(ctx, CAPFFI_EINVAL,
                                "'%s' is a word of the layout language", name);
    if (capffi__type_named(ctx, owner, name, len))
        return capffi__fail(ctx, CAPFFI_EINVAL,
                            "type '%s' is already defined%s", name,
                            owner ? " through this token" : "");

    size_t lead = strspn(layout, " \t\r\n");
    if (strncmp(layout + lead, "opaque", 6) == 0 &&
        layout[lead + 6 + strspn(layout + lead + 6, " \t\r\n")] == '\0') {
        struct capffi__type *o =
            capffi__arena_alloc(&capffi__names_of(ctx)->type_arena, sizeof *o);
        if (!o)
            return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
        memset(o, 0, sizeof *o);
        o->kind = CAPFFI__OPAQUE;
        o->align = 1;
        o->count_arg = -1;
        return capffi__type_name_add(ctx, owner, name, len, o, &o->name);
    }
    /* Parse into a scratch arena so a failure leaves nothing behind, then
     * keep the result in the context's arena by parsing again there. */
    struct capffi__arena scratch = { NULL };
    const struct capffi__type *t;
    struct capffi__type self_scratch;
    memset(&self_scratch, 0, sizeof self_scratch);
    int rc = capffi__type_parse_class(ctx, scope, &scratch, layout, name,
                                      &self_scratch, "layout", &t);
    bool is_struct = rc == 0 && t->kind == CAPFFI__STRUCT &&
                     layout[strspn(layout, " \t\r\n")] == '{';
    capffi__arena_free(&scratch);
    if (rc)
        return rc;
    if (!is_struct)
        return capffi__fail(ctx, CAPFFI_ESIG,
                            "layout byte %zu: expected '{' (a struct layout) "
                            "or 'opaque'",
                            lead);

    struct capffi__arena *arena = &capffi__names_of(ctx)->type_arena;
    struct capffi__type *named = capffi__arena_alloc(arena, sizeof *named);
    if (!named)
        return capffi__fail(ctx, CAPFFI_ENOMEM, "out of memory");
    memset(named, 0, sizeof *named);
    rc = capffi__type_parse_class(ctx, scope, arena, layout, name, named,
                                  "layout", &t);
    if (rc)
        return rc;
    /* The class is the struct parsed, at the address its own *NAME
     * fields point to. A failure leaves the parse in the arena, unnamed,
     * until the context is freed: bounded by the text's limits. */
    *named = *t;
    if (t->ffi == &t->st)
        named->ffi = &named->st;
    return capffi__type_name_add(ctx, owner, name, len, named, &named->name);
}

static void
audit_define(capffi_ctx *ctx, int rc, const struct capffi__tok *t,
             const char *name, const char *layout)
{
    struct capffi__who who = capffi__token_who(t);
    capffi__audit_emit(ctx, CAPFFI_OP_TYPE_DEFINE, rc,
                       rc == CAPFFI_EPERM    ? CAPFFI_REASON_DENIED
                       : rc == CAPFFI_ENOMEM ? CAPFFI_REASON_NOMEM
                       : rc                  ? CAPFFI_REASON_INVALID
                                             : CAPFFI_REASON_NONE,
                       &who, 0, name ? name : "", "%s",
                       rc ? capffi_ctx_errmsg(ctx) : layout);
}

int
capffi_type_define(capffi_ctx *ctx, const char *name, const char *layout)
{
    int rc = capffi__ctx_owner_check(ctx, "capffi_type_define");
    if (rc)
        return rc;
    /* H7: the context's names are seen by every principal, so only a
     * context that still grants FFI may add to them: after the host
     * revokes FFI, a script can no longer pre-empt a name. */
    if (capffi__perm_rights(&capffi__perm_of(ctx)->perm) == 0)
        rc = capffi__fail(ctx, CAPFFI_EPERM,
                          "the context grants no FFI (revoked or never "
                          "granted): define '%s' through a token "
                          "(capffi_type_define_tok)",
                          name ? name : "");
    else
        rc = define(ctx, NULL, 0, name, layout);
    audit_define(ctx, rc, NULL, name, layout);
    return rc;
}

int
capffi_type_define_tok(capffi_ctx *ctx, const capffi_token *tok,
                       const char *name, const char *layout)
{
    int rc =
        capffi__entry(ctx, CAPFFI_OP_TYPE_DEFINE, "capffi_type_define_tok");
    if (rc)
        return rc;
    struct capffi__tok *t = NULL;
    rc = capffi__token_peek(ctx, tok, 0, CAPFFI_OP_TYPE_DEFINE,
                            name ? name : "", &t);
    if (rc)
        return rc; /* the denial is audited */
    rc = define(ctx, t, t->id, name, layout);
    audit_define(ctx, rc, t, name, layout);
    return rc;
}

static int
type_size(size_t *size, size_t *align, capffi_ctx *ctx,
          const struct capffi__tok *scope, const char *type)
{
    if (!size || !type)
        return capffi__fail(ctx, CAPFFI_EINVAL, "%s is NULL",
                            size ? "type" : "size");
    struct capffi__arena a = { NULL };
    const struct capffi__type *t;
    int rc = capffi__type_parse_in(ctx, scope, &a, "type", type, &t);
    if (!rc) {
        *size = t->size;
        if (align)
            *align = t->align;
    }
    capffi__arena_free(&a);
    return rc;
}

int
capffi_type_size(size_t *size, size_t *align, capffi_ctx *ctx, const char *type)
{
    if (size)
        *size = 0;
    if (align)
        *align = 0;
    int rc = capffi__ctx_owner_check(ctx, "capffi_type_size");
    return rc ? rc : type_size(size, align, ctx, NULL, type);
}

int
capffi_type_size_tok(size_t *size, size_t *align, capffi_ctx *ctx,
                     const capffi_token *tok, const char *type)
{
    if (size)
        *size = 0;
    if (align)
        *align = 0;
    int rc = capffi__ctx_owner_check(ctx, "capffi_type_size_tok");
    if (rc)
        return rc;
    struct capffi__tok *t = NULL;
    if ((rc = capffi__token_peek(ctx, tok, 0, CAPFFI_OP_TYPE_DEFINE,
                                 type ? type : "", &t)))
        return rc;
    return type_size(size, align, ctx, t, type);
}

/* The text a field's type is read back with (capffi_view_get's words). */
static const char *
field_word(const struct capffi__type *t)
{
    switch (t->kind) {
    case CAPFFI__STRUCT:
        return "struct";
    case CAPFFI__ARRAY:
        return "array";
    case CAPFFI__CSTRING:
    case CAPFFI__TPTR:
    case CAPFFI__BUFFER:
        return "pointer";
    default:
        return t->name;
    }
}

/* One step of a path into t: the field named by p's n bytes (a name or
 * a decimal index), NULL if none. */
static const struct capffi__field *
find_field(const struct capffi__type *t, const char *p, size_t n)
{
    char *end;
    unsigned long idx = strtoul(p, &end, 10);
    if (n && end == p + n && isdigit((unsigned char)*p))
        return idx < t->nfields ? &t->fields[idx] : NULL;
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].name && strlen(t->fields[i].name) == n &&
            memcmp(t->fields[i].name, p, n) == 0)
            return &t->fields[i];
    return NULL;
}

/* "[i]" at *pp, into *idx: false when malformed. */
static bool
bracket(const char **pp, size_t *idx)
{
    const char *p = *pp + 1;
    if (!isdigit((unsigned char)*p))
        return false;
    size_t x = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (x > (SIZE_MAX - 9) / 10)
            return false;
        x = x * 10 + (size_t)(*p - '0');
    }
    if (*p != ']')
        return false;
    *idx = x;
    *pp = p + 1;
    return true;
}

int
capffi__type_place(capffi_ctx *ctx, const struct capffi__type *t, size_t count,
                   bool array, const char *path, struct capffi__place *out)
{
    size_t off = 0;
    bool ro = false;
    const char *p = path;
    /* An array instance: its index first. */
    if (array) {
        size_t idx;
        if (*p != '[' || !bracket(&p, &idx)) {
            if (*p == '\0') {
                out->offset = 0;
                out->type = NULL; /* the whole array */
                out->readonly = false;
                return CAPFFI_OK;
            }
            return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                "path '%s': an array instance is indexed "
                                "first ('[0]')",
                                path);
        }
        if (idx >= count)
            return capffi__fail(ctx, CAPFFI_EBOUNDS,
                                "path '%s': index %zu past the end of %zu "
                                "elements",
                                path, idx, count);
        off = idx * t->size;
        if (*p == '.')
            p++;
        else if (*p && *p != '[')
            return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                "path '%s': expected '.' or '[' after ']'",
                                path);
    }
    while (*p) {
        if (*p == '[') {
            size_t idx;
            const char *at = p;
            if (!bracket(&p, &idx))
                return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                    "path '%s': malformed index at byte %zu",
                                    path, (size_t)(at - path));
            if (t->kind != CAPFFI__ARRAY)
                return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                    "path '%s': '%.*s' indexes what is not "
                                    "an array",
                                    path, (int)(p - at), at);
            if (idx >= t->count)
                return capffi__fail(ctx, CAPFFI_EBOUNDS,
                                    "path '%s': index %zu past the end of "
                                    "%zu elements",
                                    path, idx, t->count);
            off += idx * t->elem->size;
            t = t->elem;
            if (*p && *p != '.' && *p != '[')
                return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                    "path '%s': expected '.' or '[' after "
                                    "']' at byte %zu",
                                    path, (size_t)(p - path));
        } else {
            size_t n = strcspn(p, ".[");
            if (t->kind != CAPFFI__STRUCT)
                return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                    "field path '%s': no struct to find "
                                    "'%.*s' in",
                                    path, (int)n, p);
            const struct capffi__field *f = find_field(t, p, n);
            if (!f)
                return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                    "field path '%s': no field '%.*s'", path,
                                    (int)n, p);
            off += f->offset;
            ro |= f->readonly;
            t = f->type;
            p += n;
        }
        if (*p == '.' && *++p == '\0')
            return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                                "field path '%s' ends with '.'", path);
    }
    out->offset = off;
    out->type = t;
    out->readonly = ro;
    return CAPFFI_OK;
}

int
capffi__type_field(capffi_ctx *ctx, const struct capffi__type *t,
                   const char *path, capffi_field *out)
{
    struct capffi__place pl;
    int rc = capffi__type_place(ctx, t, 1, false, path, &pl);
    if (rc)
        return rc;
    out->offset = pl.offset;
    out->size = pl.type->size;
    out->type = field_word(pl.type);
    return CAPFFI_OK;
}

/* A field of a struct type expression, with the names scope sees. */
static int
type_field(capffi_field *out, capffi_ctx *ctx, const struct capffi__tok *scope,
           const char *type, const char *path)
{
    if (!out || !type || !path)
        return capffi__fail(ctx, CAPFFI_EINVAL, "an argument is NULL");
    struct capffi__arena a = { NULL };
    const struct capffi__type *t;
    int rc = capffi__type_parse_in(ctx, scope, &a, "type", type, &t);
    if (!rc && t->kind != CAPFFI__STRUCT)
        rc = capffi__fail(ctx, CAPFFI_EINVAL, "'%s' is not a struct", type);
    if (!rc)
        rc = capffi__type_field(ctx, t, path, out);
    /* out->type is a static word, never a string of the arena. */
    capffi__arena_free(&a);
    return rc;
}

int
capffi_type_field(capffi_field *out, capffi_ctx *ctx, const char *type,
                  const char *path)
{
    if (out)
        memset(out, 0, sizeof *out);
    int rc = capffi__ctx_owner_check(ctx, "capffi_type_field");
    return rc ? rc : type_field(out, ctx, NULL, type, path);
}

int
capffi_type_field_tok(capffi_field *out, capffi_ctx *ctx,
                      const capffi_token *tok, const char *type,
                      const char *path)
{
    if (out)
        memset(out, 0, sizeof *out);
    int rc = capffi__ctx_owner_check(ctx, "capffi_type_field_tok");
    struct capffi__tok *t = NULL;
    if (!rc)
        rc = capffi__token_peek(ctx, tok, 0, CAPFFI_OP_TYPE_DEFINE,
                                type ? type : "", &t);
    return rc ? rc : type_field(out, ctx, t, type, path);
}

/* The offset of a field, once the field name is known not to be empty. */
static int
offset_of(size_t *offset, capffi_ctx *ctx, const capffi_token *tok,
          const char *type, const char *field)
{
    if (!offset)
        return capffi__fail(ctx, CAPFFI_EINVAL, "offset is NULL");
    *offset = 0;
    if (field && !*field)
        return capffi__fail(ctx, CAPFFI_ENOTFOUND, "the field name is empty");
    capffi_field f;
    int rc = tok ? capffi_type_field_tok(&f, ctx, tok, type, field)
                 : capffi_type_field(&f, ctx, type, field);
    if (!rc)
        *offset = f.offset;
    return rc;
}

int
capffi_type_offset(size_t *offset, capffi_ctx *ctx, const char *type,
                   const char *field)
{
    return offset_of(offset, ctx, NULL, type, field);
}

int
capffi_type_offset_tok(size_t *offset, capffi_ctx *ctx, const capffi_token *tok,
                       const char *type, const char *field)
{
    if (!tok) {
        if (offset)
            *offset = 0;
        return capffi__fail(ctx, CAPFFI_EINVAL, "token is NULL");
    }
    return offset_of(offset, ctx, tok, type, field);
}
