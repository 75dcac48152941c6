/*
 * types/sigtext.c - what the Lua side needs to know of a signature that
 * capffi accepted, read from its text: which parameters take instances
 * (`*NAME`, `?*NAME`, `*[N]T`, `*[$k]T`), which are out-parameters
 * (`out *NAME`, `out own *NAME by SYM`, `out i32`) that the Lua caller
 * omits and gets back as extra results, and whether the result is an
 * instance.
 *
 * capffi describes a typed pointer and an out-parameter to hosts with a
 * single word, so the text is read here, after capffi parsed and accepted
 * it: this reader only splits parameters and looks at their first words;
 * every check of the text stays capffi's. Its answer is used only where
 * capffi's own word for the parameter agrees ("pointer", "object" or
 * "out"), so a reading that went wrong can only refuse a call, never
 * pass a value of the wrong kind.
 */
#include <ctype.h>
#include <string.h>

#include "types/types.h"

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

/* Whether [p, end) starts with the word w followed by a non-identifier
 * byte; advances *pp past it and the spaces after. */
static bool
word(const char **pp, const char *end, const char *w)
{
    size_t n = strlen(w);
    const char *p = *pp;
    if ((size_t)(end - p) < n || memcmp(p, w, n) != 0)
        return false;
    if (p + n < end && (isalnum((unsigned char)p[n]) || p[n] == '_'))
        return false;
    *pp = skip_ws(p + n, end);
    return true;
}

/* Classify one parameter or result, the text [p, end). */
static void
classify(const char *p, const char *end, struct capffi_lua__sigpart *out)
{
    out->what = CAPFFI_LUA__SIG_PLAIN;
    out->kind = -1;
    p = skip_ws(p, end);
    if (end - p >= 3 && memcmp(p, "...", 3) == 0) { /* the variadic mark */
        p = skip_ws(p + 3, end);
        if (p < end && *p == ':')
            p = skip_ws(p + 1, end);
    }
    bool out_ = word(&p, end, "out");
    word(&p, end, "own");
    if (p < end && (*p == '*' || *p == '?')) {
        out->what = out_ ? CAPFFI_LUA__SIG_OUTOBJ : CAPFFI_LUA__SIG_OBJECT;
        return;
    }
    if (!out_)
        return;
    size_t n = 0;
    while (p + n < end && (isalnum((unsigned char)p[n]) || p[n] == '_'))
        n++;
    char w[16];
    if (n == 0 || n >= sizeof w)
        return;
    memcpy(w, p, n);
    w[n] = '\0';
    out->what = CAPFFI_LUA__SIG_OUTVAL;
    out->kind = (int8_t)capffi_lua__kind_of(w);
}

int
capffi_lua__sig_read(const char *sig, struct capffi_lua__sigpart *params,
                     int max, struct capffi_lua__sigpart *result)
{
    const char *end = sig + strlen(sig);
    const char *p = skip_ws(sig, end);
    if (p >= end || *p != '(')
        return -1;
    p++;
    int n = 0, depth = 0;
    const char *start = p;
    bool empty = true;
    for (; p < end; p++) {
        char c = *p;
        if (c == '(' || c == '{' || c == '[') {
            depth++;
        } else if ((c == ')' || c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (depth == 0 && (c == ',' || c == ')')) {
            if (!empty) {
                if (n >= max)
                    return -1;
                classify(start, p, &params[n++]);
            } else if (c == ',') {
                return -1;
            }
            start = p + 1;
            empty = true;
            if (c == ')')
                break;
            continue;
        }
        if (!isspace((unsigned char)c))
            empty = false;
    }
    if (p >= end)
        return -1;
    p = skip_ws(p + 1, end);
    if (end - p < 2 || memcmp(p, "->", 2) != 0)
        return -1;
    classify(p + 2, end, result);
    if (result->what != CAPFFI_LUA__SIG_OBJECT &&
        result->what != CAPFFI_LUA__SIG_PLAIN)
        return -1;
    return n;
}
