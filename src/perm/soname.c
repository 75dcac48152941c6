/*
 * soname.c - finding the file a bare soname ("libz.so.1") names, the way
 * the dynamic loader would, so that the file checked against a token is
 * the file loaded.
 *
 * It lives in the permission layer because grants, deny lists, token
 * scopes and checked paths name libraries by soname too, and each must
 * mean the file capffi_lib_open would load (path.c resolves every bare
 * name through here).
 *
 * Order: LD_LIBRARY_PATH (ignored in set-uid processes, as the loader
 * does), then /etc/ld.so.cache (glibc's 1.1 format), then the default
 * directories. DT_RPATH and DT_RUNPATH of the calling object are not
 * consulted. Threat answered: L5 (the grant is checked against the file
 * found; whatever an attacker puts first in LD_LIBRARY_PATH is what gets
 * checked, and refused unless granted).
 */
#include "perm/soname.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
try_dir(const char *dir, size_t dlen, const char *name, char *out)
{
    if (dlen == 0) {
        dir = ".";
        dlen = 1;
    }
    int n = snprintf(out, PATH_MAX, "%.*s/%s", (int)dlen, dir, name);
    return n > 0 && n < PATH_MAX && regular_file(out);
}

static bool
from_env(const char *name, char *out)
{
    if (getauxval(AT_SECURE))
        return false;
    const char *llp = getenv("LD_LIBRARY_PATH");
    if (!llp)
        return false;
    while (*llp) {
        size_t n = strcspn(llp, ":;");
        if (try_dir(llp, n, name, out))
            return true;
        llp += n;
        if (*llp)
            llp++;
    }
    return false;
}

#if defined(__x86_64__)
#define CACHE_ARCH 0x0300 /* FLAG_X8664_LIB64 */
#elif defined(__aarch64__)
#define CACHE_ARCH 0x0a00 /* FLAG_AARCH64_LIB64 */
#else
#define CACHE_ARCH (-1)
#endif

struct cache_header {
    char magic[20]; /* "glibc-ld.so.cache1.1" */
    uint32_t nlibs;
    uint32_t len_strings;
    uint8_t flags;
    uint8_t pad[3];
    uint32_t extension_offset;
    uint32_t unused[3];
};

struct cache_entry {
    int32_t flags;
    uint32_t key, value; /* string offsets from the start of the file */
    uint32_t osversion;
    uint64_t hwcap;
};

static bool
from_cache(const char *name, char *out)
{
    int fd = open("/etc/ld.so.cache", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool found = false;
    if (fstat(fd, &st) != 0 ||
        (size_t)st.st_size < sizeof(struct cache_header)) {
        close(fd);
        return false;
    }
    size_t size = (size_t)st.st_size;
    const char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return false;
    const struct cache_header *h = (const void *)map;
    size_t max = (size - sizeof *h) / sizeof(struct cache_entry);
    if (memcmp(h->magic, "glibc-ld.so.cache1.1", 20) == 0 && h->nlibs <= max) {
        const struct cache_entry *e = (const void *)(map + sizeof *h);
        size_t nlen = strlen(name);
        for (uint32_t i = 0; i < h->nlibs && !found; i++) {
            if (CACHE_ARCH >= 0 && (e[i].flags & 0xff00) != CACHE_ARCH)
                continue;
            if (e[i].key >= size || e[i].value >= size)
                continue;
            const char *key = map + e[i].key;
            const char *val = map + e[i].value;
            if (strnlen(key, size - e[i].key) != nlen ||
                memcmp(key, name, nlen) != 0)
                continue;
            size_t vlen = strnlen(val, size - e[i].value);
            if (vlen == size - e[i].value || vlen >= PATH_MAX)
                continue;
            memcpy(out, val, vlen + 1);
            found = regular_file(out);
        }
    }
    munmap((void *)map, size);
    return found;
}

static const char *const default_dirs[] = {
#if defined(__x86_64__)
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
#elif defined(__aarch64__)
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
#endif
    "/lib",
    "/usr/lib",
    NULL
};

bool
capffi__soname_is_bare(const char *path)
{
    return !strchr(path, '/') && strcmp(path, ".") != 0 &&
           strcmp(path, "..") != 0;
}

int
capffi__soname_resolve(capffi_ctx *ctx, const char *name, char *out)
{
    if (from_env(name, out) || from_cache(name, out))
        return CAPFFI_OK;
    for (size_t i = 0; default_dirs[i]; i++)
        if (try_dir(default_dirs[i], strlen(default_dirs[i]), name, out))
            return CAPFFI_OK;
    out[0] = '\0';
    return capffi__fail(ctx, CAPFFI_ENOTFOUND,
                        "soname '%s' not found in LD_LIBRARY_PATH, "
                        "/etc/ld.so.cache or the default directories",
                        name);
}
