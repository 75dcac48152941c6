#!/bin/sh
# Builds capffi and runs the demos: the revocable-runtime story, real
# system libraries (libm, libz) called through a token, then libc's qsort
# and a native thread calling back into the host.
# usage: scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
./build/examples/token_story
echo
./build/examples/system_libs
echo
exec ./build/examples/callbacks
