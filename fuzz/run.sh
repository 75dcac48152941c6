#!/bin/sh
# Run the signature fuzzer for a bounded number of inputs, starting from a
# copy of the seed corpus (the seeds themselves are left as they are).
# Exits non-zero when libFuzzer finds a crash, a leak, undefined behaviour
# or a broken invariant; the input is kept in BUILDDIR/fuzz-artifacts/.
#
# usage: sh fuzz/run.sh BUILDDIR [more libFuzzer flags...]
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 BUILDDIR [libFuzzer flags...]" >&2
    exit 2
fi
build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$build/fuzz/fuzz_sig
if [ ! -x "$fuzzer" ]; then
    echo "$fuzzer not found: build it with" >&2
    echo "  CC=clang meson setup $build -Dfuzz=true && ninja -C $build" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/capffi-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$work/corpus"
cp "$here"/corpus/seed-*.txt "$work/corpus/"
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS

status=0
# -error_exitcode: libFuzzer's default, 77, is what meson reads as a skip.
"$fuzzer" -runs=200000 -max_len=512 -timeout=25 -print_final_stats=1 \
    -error_exitcode=1 \
    -artifact_prefix="$artifacts/" "$@" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz_sig failed (exit $status); the input is in $artifacts/" >&2
    exit "$status"
fi
echo "fuzz_sig: no crash"
