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
};

/* The mapping that holds addr: false when none does, or the list cannot
 * be read. */
CAPFFI__HIDDEN bool capffi__maps_find(uintptr_t addr,
                                      struct capffi__mapping *out);

/* Whether every byte of [addr, addr + len) is mapped (by one mapping or
 * by adjacent ones); len 0 is mapped when addr is. False when the list
 * cannot be read. */
CAPFFI__HIDDEN bool capffi__maps_cover(uintptr_t addr, size_t len);

#endif
