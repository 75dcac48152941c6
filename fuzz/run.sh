#!/bin/sh
# Run a fuzzer for a bounded number of inputs, starting from a copy of its
# seed corpus (the seeds themselves are left as they are) and with the
# words of the languages as a dictionary (capffi.dict). Exits non-zero
# when libFuzzer finds a crash, a leak, undefined behaviour or a broken
# invariant; the input is kept in BUILDDIR/fuzz-artifacts/.
#
#   fuzz_sig     signatures and type expressions; seeds corpus/seed-*.txt
#   fuzz_layout  class layouts and field paths; seeds corpus/layout/
#
# usage: sh fuzz/run.sh BUILDDIR [HARNESS] [more libFuzzer flags...]
# Without HARNESS (the next argument starts with '-', or there is none),
# every harness runs in turn.
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 BUILDDIR [fuzz_sig|fuzz_layout] [libFuzzer flags...]" >&2
    exit 2
fi
build=$1
shift
harnesses="fuzz_sig fuzz_layout"
if [ $# -gt 0 ]; then
    case $1 in
    -*) ;;
    *)
        harnesses=$1
        shift
        ;;
    esac
fi
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/capffi-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"

UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS

for name in $harnesses; do
    case $name in
    fuzz_sig) seeds=$here/corpus ;;
    fuzz_layout) seeds=$here/corpus/layout ;;
    *)
        echo "unknown harness '$name' (fuzz_sig or fuzz_layout)" >&2
        exit 2
        ;;
    esac
    fuzzer=$build/fuzz/$name
    if [ ! -x "$fuzzer" ]; then
        echo "$fuzzer not found: build it with" >&2
        echo "  CC=clang meson setup $build -Dfuzz=true && ninja -C $build" >&2
        exit 2
    fi
    mkdir "$work/$name"
    cp "$seeds"/seed-*.txt "$work/$name/"
    status=0
    # -error_exitcode: libFuzzer's default, 77, is what meson reads as a
    # skip.
    "$fuzzer" -runs=200000 -max_len=512 -timeout=25 -print_final_stats=1 \
        -error_exitcode=1 -dict="$here/capffi.dict" \
        -artifact_prefix="$artifacts/" "$@" "$work/$name" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "$name failed (exit $status); the input is in $artifacts/" >&2
        exit "$status"
    fi
    echo "$name: no crash"
done
