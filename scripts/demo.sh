#!/bin/sh
# Builds capffi and its Lua runner and runs the flagship demo, the
# revocable runtime (examples/demo.lua), against the system's libz and
# libsqlite3; its audit trail is written as JSON Lines too.
# usage: scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -d build ] || meson setup build -Dlua=enabled >/dev/null
if ! meson compile -C build >/dev/null || [ ! -x build/bindings/lua/capffi-lua ]; then
    meson configure build -Dlua=enabled >/dev/null
    meson compile -C build
fi
audit=build/demo-audit.jsonl
./build/bindings/lua/capffi-lua --allow-ffi --audit="$audit" examples/demo.lua
echo
echo "The same trail as JSON Lines: $audit ($(wc -l <"$audit") events). The first:"
head -n 1 "$audit"
echo
echo "In C: build/examples/token_story, build/examples/system_libs, build/examples/memory, build/examples/callbacks"
