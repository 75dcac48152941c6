/*
 * maps.h - the process's memory mappings as the kernel lists them
 * (/proc/self/maps), for the checks that must know what memory an
 * address belongs to (maps.c).
 */
#ifndef CAPFFI_SRC_BASE_MAPS_H
#define CAPFFI_SRC_BASE_MAPS_H

#include <sys/types.h>

#include "base/internal.h"

struct capffi__mapping {
    uintptr_t lo, hi; /* [lo, hi) */
    dev_t dev;        /* the file mapped, 0:0 and inode 0 for none */
    ino_t ino;
    bool readable, writable;
};

/* The mapping that holds addr: false when none does, or the list cannot
 * be read. */
CAPFFI__HIDDEN bool capffi__maps_find(uintptr_t addr,
                                      struct capffi__mapping *out);

/*
 * Whether [addr, addr + len) lies within the one mapping that holds addr,
 * and that mapping allows reading (and writing, with write); len 0 needs
 * addr mapped. Adjacent mappings are other objects (another library, a
 * guard page, the loader's data), so a range is never joined across them.
 * False when the list cannot be read.
 */
CAPFFI__HIDDEN bool capffi__maps_within(uintptr_t addr, size_t len, bool write);

#endif
