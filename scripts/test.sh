#!/bin/sh
# Builds capffi and runs the whole test suite: a normal build, an
# AddressSanitizer+UndefinedBehaviorSanitizer build, and a
# ThreadSanitizer build for the `threads` suite. The last line is
# "N passed, M failed" (test programs, as meson counts them); the exit
# status is non-zero when anything failed or did not build.
# usage: scripts/test.sh
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1

failed_builds=0
results=""

# run_suite NAME BUILDDIR "MESON SETUP OPTIONS" "MESON TEST OPTIONS" [CC]
run_suite() {
    name=$1 dir=$2 setup=$3 testopts=$4 cc=${5:-${CC:-cc}}
    echo "== $name build ($dir)"
    # shellcheck disable=SC2086
    if ! { [ -d "$dir" ] || CC=$cc meson setup "$dir" $setup >"$dir.setup.log" 2>&1; }; then
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
# The signature parser's libFuzzer harness, for a bounded number of runs.
run_suite fuzz build-fuzz \
    "-Dfuzz=true -Dtests=false -Dbenchmarks=false -Dexamples=false" "" clang

# shellcheck disable=SC2086
python3 - $failed_builds $results <<'PY'
import json, sys
builds_failed = int(sys.argv[1])
passed = failed = skipped = 0
for path in sys.argv[2:]:
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
