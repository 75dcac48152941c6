#!/bin/sh
# Builds capffi and runs the whole test suite: a normal build, an
# AddressSanitizer+UndefinedBehaviorSanitizer build, and a
# ThreadSanitizer build for the `threads` suite, then checks that the
# library builds in the other build types packagers use, as a static
# library, and as a meson subproject found through a wrap file. Every
# build treats warnings as errors (-Dwerror=true; meson.build leaves werror
# off for users). The last line is "N passed, M failed" (test programs,
# as meson counts them, plus one per build-type or packaging check); the
# exit status is non-zero when anything failed or did not build.
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

# count_build NAME DIR STATUS: one passed or failed entry for a packaging
# check; on failure, the end of its log (DIR.log).
count_build() {
    if [ "$3" -eq 0 ]; then
        passed_builds=$((passed_builds + 1))
    else
        echo "$1 failed:"
        tail -n 40 "$2.log"
        failed_builds=$((failed_builds + 1))
    fi
}

# static_build: the library as a static archive (-Ddefault_library=static)
# with the examples linked against it and run; then installed with
# --destdir, and tests/packaging/consumer/main.c compiled and linked from
# the installed files alone through `pkg-config --static`, so the installed
# headers and capffi.pc's private requirements are what a static consumer
# needs. One entry.
static_build() {
    dir=build-static
    echo "== static library ($dir)"
    (
        set -e
        configure "$dir" "${CC:-cc}" -Ddefault_library=static \
            -Dtests=false -Dbenchmarks=false ||
            { cat "$dir.setup.log"; exit 1; }
        meson compile -C "$dir"
        meson test -C "$dir" --no-rebuild --print-errorlogs --suite examples
        rm -rf "$dir/destdir"
        meson install -C "$dir" --no-rebuild --destdir "$PWD/$dir/destdir"
        pc=$(find "$dir/destdir" -name capffi.pc)
        prefix=$(sed -n 's/^prefix=//p' "$pc")
        pkgconf="pkg-config --static --define-variable=prefix=$PWD/$dir/destdir$prefix"
        # shellcheck disable=SC2046
        ${CC:-cc} -std=c11 -Wall -Wextra -pedantic -Werror \
            -o "$dir/static_consumer" tests/packaging/consumer/main.c \
            $(PKG_CONFIG_PATH=$(dirname "$pc") $pkgconf --cflags --libs capffi) \
            -lm
        "$dir/static_consumer"
    ) >"$dir.log" 2>&1
    count_build "static library" "$dir" $?
}
static_build

# consumer_build: tests/packaging/consumer, a meson project that finds
# capffi through subprojects/capffi.wrap ([provide] dependency_names =
# capffi) with subprojects/capffi linked to this checkout. It must pick the
# subproject's overridden dependency, build with warnings as errors, run,
# and install nothing of capffi's; then, with -Dcapffi:install=enabled and
# -Dcapffi:default_library=static, install capffi's archive, headers and
# capffi.pc, and the installed program must run without libcapffi.so. One
# entry.
consumer_build() {
    dir=build-consumer
    echo "== meson subproject through a wrap ($dir)"
    rm -rf "$dir"
    mkdir -p "$dir"
    (
        set -e
        cp -R tests/packaging/consumer "$dir/src"
        ln -s "$PWD" "$dir/src/subprojects/capffi"
        CC=${CC:-cc} meson setup "$dir/build" "$dir/src" -Dwerror=true \
            --force-fallback-for=capffi >"$dir/setup.log" 2>&1 ||
            { cat "$dir/setup.log"; exit 1; }
        grep -q "Dependency capffi found: YES .*(overridden)" "$dir/setup.log" ||
            { echo "dependency('capffi') did not use the override"; exit 1; }
        meson compile -C "$dir/build"
        meson test -C "$dir/build" --no-rebuild --print-errorlogs
        meson install -C "$dir/build" --no-rebuild --destdir "$PWD/$dir/dest"
        installed=$(cd "$dir/dest" && find . ! -type d | sort)
        case $installed in
        */bin/consumer) ;;
        *) echo "installed more than the consumer:"; echo "$installed"; exit 1 ;;
        esac
        [ "$(echo "$installed" | wc -l)" -eq 1 ] ||
            { echo "installed more than the consumer:"; echo "$installed"; exit 1; }
        meson configure "$dir/build" -Dcapffi:install=enabled \
            -Dcapffi:default_library=static
        meson compile -C "$dir/build"
        meson test -C "$dir/build" --no-rebuild --print-errorlogs
        meson install -C "$dir/build" --no-rebuild --destdir "$PWD/$dir/dest2"
        for f in include/capffi.h include/capffi/obj.h libcapffi.a capffi.pc
        do
            find "$dir/dest2" -path "*/$f" | grep -q . ||
                { echo "not installed: $f"; exit 1; }
        done
        ! find "$dir/dest2" -name 'libcapffi.so*' | grep -q . ||
            { echo "libcapffi.so installed by a static build"; exit 1; }
        "$(find "$dir/dest2" -path '*/bin/consumer')"
    ) >"$dir.log" 2>&1
    count_build "meson subproject" "$dir" $?
}
consumer_build

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
if skipped:
    print(f"{skipped} skipped (their reasons are in the logs above)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
