/*
 * bench_table.c - the overview table: every way of making a call, per
 * call, next to a direct C call (work in progress).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <capffi.h>

#include "bench_util.h"

int
main(int argc, char **argv)
{
    bench_name = "bench_table";
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && strcmp(argv[i], "--quick") != 0) {
            fprintf(stderr, "usage: bench_table [--quick] [FIXTURE]\n");
            return 2;
        }
    printf("bench_table: capffi %s\n", capffi_version());
    return 0;
}
