#!/bin/sh
# Builds examples/lua_host/host.c the way a user would, against the files
# `meson install` puts in place (capffi-lua.pc, capffi/lua.h,
# libcapffi-lua.so), not against the build tree, and runs it.
# usage: test_installed.sh MESON BUILD_DIR HOST_C SANITIZE
# Exit status 77 (a skip, with the reason) when a tool it needs is missing.
set -u
meson=$1 build=$2 src=$3 sanitize=$4

skip() {
    echo "skip: $*"
    exit 77
}
[ "$sanitize" = none ] ||
    skip "a -Db_sanitize=$sanitize build's libraries need its runtime first"
command -v pkg-config >/dev/null 2>&1 ||
    skip "pkg-config not found (Debian: pkg-config)"
pkg-config --exists lua5.4 ||
    skip "lua5.4.pc not found (Debian: liblua5.4-dev)"
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || skip "no C compiler ($cc)"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

if ! "$meson" install -C "$build" --destdir "$dest" --no-rebuild \
    >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: meson install --destdir"
    exit 1
fi
pc=$(find "$dest" -name capffi-lua.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: capffi-lua.pc was not installed"; exit 1; }
pcdir=$(dirname "$pc")
[ -f "$pcdir/capffi.pc" ] || { echo "FAIL: capffi.pc is not beside it"; exit 1; }

# The .pc files name the configured prefix; the files are under $dest.
# Copies whose prefix points into $dest (pkg-config's --define-prefix and
# PKG_CONFIG_SYSROOT_DIR would move lua5.4.pc's paths too).
mkdir "$tmp/pc"
for f in capffi capffi-lua; do
    prefix=$(sed -n 's/^prefix=//p' "$pcdir/$f.pc")
    sed "s|^prefix=.*|prefix=$dest$prefix|" "$pcdir/$f.pc" >"$tmp/pc/$f.pc"
done
# Only a static libcapffi-lua.a installed (-Ddefault_library=static):
# link it with what it needs.
static=
[ -n "$(find "$dest" -name 'libcapffi-lua.so*' | head -n 1)" ] ||
    static=--static
flags=$(PKG_CONFIG_PATH=$tmp/pc pkg-config $static --cflags --libs capffi-lua) || {
    echo "FAIL: pkg-config capffi-lua"
    exit 1
}
echo "cc host.c $flags"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/host" "$src" $flags || {
    echo "FAIL: host.c does not build against the installed files"
    exit 1
}

libdir=$(PKG_CONFIG_PATH=$tmp/pc pkg-config --variable=libdir capffi-lua)
LD_LIBRARY_PATH=$libdir "$tmp/host" >"$tmp/out" 2>&1
status=$?
cat "$tmp/out"
[ "$status" = 0 ] || { echo "FAIL: the host exited with status $status"; exit 1; }
for want in "cos(0) = 1, cos(pi) = -1" "audit: lib.bind CAPFFI_OK cos" \
    "prompt: " "token for libz:	false	CAPFFI_EPERM" "host: done"; do
    grep -qF "$want" "$tmp/out" || { echo "FAIL: no '$want'"; exit 1; }
done
# It ran the installed library, not the build tree's.
[ -n "$static" ] || LD_LIBRARY_PATH=$libdir ldd "$tmp/host" 2>/dev/null |
    grep -q "$dest" || {
    echo "FAIL: the host did not load libcapffi-lua from the install"
    exit 1
}
echo "ok: host.c built and ran against the installed capffi-lua"
