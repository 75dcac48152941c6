#!/bin/sh
# Installs the Debian 12 packages capffi needs to build and test, if any
# are missing. Runs apt-get as root, or through sudo.
# usage: scripts/deps.sh [--demo] [extra packages...]
#   --demo: only what scripts/demo.sh needs (the library, the Lua runner,
#           the C examples, and the libz and libsqlite3 the demo loads)
set -eu

# zlib1g and libsqlite3-0 hold libz.so.1 and libsqlite3.so.0, which the
# examples and the Lua tests dlopen by soname (the -dev packages pull
# them in too; they are named for what is loaded). libuv1-dev and
# libglib2.0-dev are the event loops the examples loop_libuv and
# loop_glib run in (without them those two tests are skipped). luarocks
# builds capffi-scm-1.rockspec in the lua_luarocks test (skipped without
# it); Debian's package brings lua5.1 along, which capffi does not use.
if [ "${1:-}" = --demo ]; then
    shift
    packages="meson ninja-build pkg-config gcc python3
libffi-dev libsodium-dev uthash-dev zlib1g libsqlite3-0 liblua5.4-dev $*"
else
    packages="meson ninja-build pkg-config gcc g++ python3
libffi-dev libsodium-dev uthash-dev libcmocka-dev
zlib1g zlib1g-dev libsqlite3-0 libsqlite3-dev liblua5.4-dev lua5.4 clang-format clang libclang-rt-14-dev valgrind
libuv1-dev libglib2.0-dev luarocks $*"
fi

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -n "$missing" ] || exit 0

echo "deps: installing$missing"
if [ "$(id -u)" = 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1; then
    run="sudo"
else
    echo "deps: missing$missing; run this script as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$run apt-get update -qq
# shellcheck disable=SC2086
$run apt-get install -y -qq --no-install-recommends $missing >/dev/null
