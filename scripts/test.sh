#!/bin/sh
# Builds capffi and runs the whole test suite: a normal build, an
# AddressSanitizer+UndefinedBehaviorSanitizer build, and a
# ThreadSanitizer build for the `threads` suite, then checks that the
# library builds in the other build types packagers use. Every build
# treats warnings as errors (-Dwerror=true; meson.build leaves werror
# off for users). The last line is "N passed, M failed" (test programs,
# as meson counts them, plus one per build-type check); the exit status
# is non-zero when anything failed or did not build.
# usage: scripts/test.sh
set -u
cd "$(dirname "$0")/.." || exit 1
sh scripts/deps.sh || exit 1

failed_builds=0
passed_builds=0
results=""

# configure BUILDDIR CC [MESON SETUP OPTIONS...]: set up BUILDDIR, or
# keep the one there (a build set up by hand lacks -Dwerror=true: turn it
# on, which rebuilds nothing when it already was). Output in
# BUILDDIR.setup.log.
configure() {
    cfg_dir=$1 cfg_cc=$2
    shift 2
    if [ -d "$cfg_dir" ]; then
        meson configure "$cfg_dir" -Dwerror=true >"$cfg_dir.setup.log" 2>&1
    else
        CC=$cfg_cc meson setup "$cfg_dir" -Dwerror=true "$@" \
            >"$cfg_dir.setup.log" 2>&1
    fi
}

# run_suite NAME BUILDDIR "MESON SETUP OPTIONS" "MESON TEST OPTIONS" [CC]
run_suite() {
    name=$1 dir=$2 setup=$3 testopts=$4 cc=${5:-${CC:-cc}}
    echo "== $name build ($dir)"
    # shellcheck disable=SC2086
    if ! configure "$dir" "$cc" $setup; then
        cat "$dir.setup.log"
        failed_builds=$((failed_builds + 1))
        return
    fi
    if ! meson compile -C "$dir" >"$dir.compile.log" 2>&1; then
        tail -n 40 "$dir.compile.log"
        failed_builds=$((failed_builds + 1))
        return
    fi
    # shellcheck disable=SC2086
    meson test -C "$dir" --no-rebuild --print-errorlogs $testopts
    results="$results $dir/meson-logs/testlog.json"
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

run_suite normal build "" ""
# The same build under valgrind's memcheck (the race-heavy `slow` suite is
# left to the sanitizer builds: thousands of loads are too slow there).
if [ -d build ] && command -v valgrind >/dev/null 2>&1; then
    echo "== valgrind (build, --setup valgrind)"
    meson test -C build --no-rebuild --print-errorlogs --setup valgrind \
        --suite unit --suite security --no-suite slow --no-suite headers
    results="$results build/meson-logs/testlog-valgrind.json"
fi
run_suite asan build-asan \
    "-Db_sanitize=address,undefined -Db_lundef=false" "--no-suite style"
run_suite tsan build-tsan \
    "-Db_sanitize=thread -Db_lundef=false -Dbenchmarks=false -Dexamples=false" \
    "--suite threads"
# The libFuzzer harnesses (fuzz_sig: signatures; fuzz_layout: class layouts
# and field paths), each for a bounded number of runs.
run_suite fuzz build-fuzz \
    "-Dfuzz=true -Dtests=false -Dbenchmarks=false -Dexamples=false" "" clang

# build_only BUILDTYPE: the library and the Lua binding, as a packager
# builds them (no tests, benchmarks or examples), in BUILDTYPE with
# warnings as errors; compiler warnings differ with the optimisation
# level, so a warning the normal build misses fails here. Counted as one
# passed or failed entry.
build_only() {
    dir=build-$1
    echo "== $1 build, library only ($dir)"
    if configure "$dir" "${CC:-cc}" -Dbuildtype="$1" -Dtests=false \
        -Dbenchmarks=false -Dexamples=false &&
        meson compile -C "$dir" >"$dir.compile.log" 2>&1; then
        passed_builds=$((passed_builds + 1))
    else
        tail -n 40 "$dir.setup.log" "$dir.compile.log" 2>/dev/null
        failed_builds=$((failed_builds + 1))
    fi
}
for buildtype in plain debug minsize release; do
    build_only $buildtype
done

# shellcheck disable=SC2086
python3 - $failed_builds $passed_builds $results <<'PY'
import json, sys
builds_failed = int(sys.argv[1])
passed = int(sys.argv[2])
failed = skipped = 0
for path in sys.argv[3:]:
    try:
        with open(path) as f:
            for line in f:
                r = json.loads(line).get("result")
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except OSError:
        failed += 1
failed += builds_failed
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
