#!/bin/sh
# Builds capffi and runs the demos: the revocable-runtime story, then real
# system libraries (libm, libz) called through a token.
# usage: scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
./build/examples/token_story
echo
exec ./build/examples/system_libs
