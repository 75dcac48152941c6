/*
 * maps.c - reading /proc/self/maps. The kernel lists the mappings in
 * address order, one a line: "lo-hi perms offset major:minor inode path".
 */
#include "base/maps.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/sysmacros.h>

/* Call fn on each mapping in address order until it returns false. */
static bool
each_mapping(bool (*fn)(const struct capffi__mapping *m, void *arg), void *arg)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return false;
    char line[PATH_MAX + 128];
    while (fgets(line, sizeof line, maps)) {
        struct capffi__mapping m;
        unsigned maj, min;
        unsigned long long inode;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %x:%x %llu", &m.lo,
                   &m.hi, &maj, &min, &inode) != 5)
            continue;
        m.dev = makedev(maj, min);
        m.ino = (ino_t)inode;
        if (!fn(&m, arg))
            break;
    }
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

struct cover {
    uintptr_t next, end; /* [next, end) is still to be found mapped */
    bool done;
};

static bool
cover_one(const struct capffi__mapping *m, void *arg)
{
    struct cover *c = arg;
    if (m->hi <= c->next)
        return true;
    if (m->lo > c->next)
        return false; /* a hole */
    if (m->hi >= c->end) {
        c->done = true;
        return false;
    }
    c->next = m->hi;
    return true;
}

bool
capffi__maps_cover(uintptr_t addr, size_t len)
{
    if (len > UINTPTR_MAX - addr)
        return false;
    /* A byte at least, so that an empty range still has to be mapped. */
    struct cover c = { addr, addr + (len ? len : 1), false };
    return each_mapping(cover_one, &c) && c.done;
}
