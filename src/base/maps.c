/*
 * maps.c - reading /proc/self/maps. The kernel lists the mappings in
 * address order, one a line: "lo-hi perms offset major:minor inode path".
 */
#include "base/maps.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysmacros.h>

/* Call fn on each mapping in address order until it returns false. Lines
 * are read whole (getline): a long path cannot split one into two. */
static bool
each_mapping(bool (*fn)(const struct capffi__mapping *m, void *arg), void *arg)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return false;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, maps) > 0) {
        struct capffi__mapping m;
        char perms[8];
        unsigned maj, min;
        unsigned long long inode;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %x:%x %llu", &m.lo,
                   &m.hi, perms, &maj, &min, &inode) != 6)
            continue;
        m.dev = makedev(maj, min);
        m.ino = (ino_t)inode;
        m.readable = perms[0] == 'r';
        m.writable = perms[1] == 'w';
        if (!fn(&m, arg))
            break;
    }
    free(line); /* getline's, not the library's allocator */
    fclose(maps);
    return true;
}

struct find {
    uintptr_t addr;
    struct capffi__mapping *out;
    bool found;
};

static bool
find_one(const struct capffi__mapping *m, void *arg)
{
    struct find *f = arg;
    if (f->addr >= m->hi)
        return true;
    if (f->addr >= m->lo) {
        *f->out = *m;
        f->found = true;
    }
    return false;
}

bool
capffi__maps_find(uintptr_t addr, struct capffi__mapping *out)
{
    struct find f = { addr, out, false };
    return each_mapping(find_one, &f) && f.found;
}

bool
capffi__maps_within(uintptr_t addr, size_t len, bool write)
{
    struct capffi__mapping m;
    if (len > UINTPTR_MAX - addr || !capffi__maps_find(addr, &m))
        return false;
    return addr + len <= m.hi && m.readable && (!write || m.writable);
}
