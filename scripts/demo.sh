#!/bin/sh
# Builds capffi, its Lua runner and the C examples, and runs the flagship
# demo, the revocable runtime (examples/demo.lua), against the system's
# libz and libsqlite3; its audit trail is written as JSON Lines too. It
# installs only what that needs (scripts/deps.sh --demo) and builds in
# build-demo, without the tests and benchmarks.
# usage: scripts/demo.sh
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --demo
dir=build-demo
[ -d "$dir" ] ||
    meson setup "$dir" -Dlua=enabled -Dtests=false -Dbenchmarks=false >/dev/null
if ! meson compile -C "$dir" >/dev/null || [ ! -x "$dir/bindings/lua/capffi-lua" ]; then
    meson configure "$dir" -Dlua=enabled >/dev/null
    meson compile -C "$dir"
fi
audit=$dir/demo-audit.jsonl
"./$dir/bindings/lua/capffi-lua" --allow-ffi --audit="$audit" examples/demo.lua
echo
echo "The same trail as JSON Lines: $audit ($(wc -l <"$audit") events). The first:"
head -n 1 "$audit"
echo
echo "In C: $dir/examples/token_story, $dir/examples/system_libs, $dir/examples/memory, $dir/examples/callbacks, $dir/examples/safeffi"
