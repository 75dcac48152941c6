/*
 * loadlib_flip.c - preloaded (LD_PRELOAD) into capffi-lua by the
 * lua_loadlib_swap test (H4). It makes certain the moment an attacker
 * races for: between a check of a library and its load.
 *
 * At start it points the symlink $CAPFFI_FLIP_LINK at $CAPFFI_FLIP_FROM.
 * Every dlopen then points the link at $CAPFFI_FLIP_TO, lets the real
 * dlopen run, and points the link back at $CAPFFI_FLIP_FROM. A loader that
 * checked the link's name and then loaded that name loads FLIP_TO; one
 * that loads the file it checked loads FLIP_FROM.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Point link at target, atomically (a new link renamed over the old). */
static void
point(const char *link, const char *target)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.new", link) >= (int)sizeof tmp)
        abort();
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        perror("loadlib_flip");
        abort();
    }
}

static void flip_init(void) __attribute__((constructor));

static void
flip_init(void)
{
    const char *link = getenv("CAPFFI_FLIP_LINK");
    const char *from = getenv("CAPFFI_FLIP_FROM");
    if (link && from)
        point(link, from);
}

void *
dlopen(const char *file, int mode)
{
    static void *(*real)(const char *, int);
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "dlopen");
        if (!sym)
            abort();
        memcpy(&real, &sym, sizeof real);
    }
    const char *link = getenv("CAPFFI_FLIP_LINK");
    const char *from = getenv("CAPFFI_FLIP_FROM");
    const char *to = getenv("CAPFFI_FLIP_TO");
    if (!link || !from || !to)
        return real(file, mode);
    point(link, to);
    void *handle = real(file, mode);
    point(link, from);
    return handle;
}
