#!/bin/sh
# `luarocks make` of capffi-scm-1.rockspec in a temporary copy, against
# capffi installed by `meson install --destdir` of this build, then the
# stock lua5.4 requiring the module from the rocks tree, granted through
# CAPFFI_ALLOW_FFI. TAP; skipped ("1..0 # SKIP" and the reason, which
# meson counts as a skip) without luarocks or lua5.4, in a sanitizer
# build, or when luarocks cannot build offline.
# usage: rockspec.sh MESON BUILD_DIR SOURCE_ROOT SANITIZE
set -u
meson=$1 build=$2 root=$3 sanitize=$4

skip() {
    echo "1..0 # SKIP $*"
    exit 0
}
[ "$sanitize" = none ] ||
    skip "a -Db_sanitize=$sanitize build's libcapffi needs its runtime first"
command -v luarocks >/dev/null 2>&1 ||
    skip "luarocks not found (Debian: luarocks)"
command -v lua5.4 >/dev/null 2>&1 || skip "lua5.4 not found (Debian: lua5.4)"

n=0
failed=0
check() { # check DESCRIPTION COMMAND...
    desc=$1
    shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $desc"
    else
        echo "not ok $n - $desc"
        failed=1
    fi
}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
rockspec=$root/capffi-scm-1.rockspec

# The rockspec lists the sources meson builds the module from, in order.
sed -n "/^capffi_lua_sources = files(/,/^)/p" "$root/bindings/lua/meson.build" |
    grep -o "'[^']*'" | tr -d "'" | sed 's|^|bindings/lua/|' >"$tmp/meson.list"
echo bindings/lua/module.c >>"$tmp/meson.list"
grep -o '"bindings/lua/[^"]*\.c"' "$rockspec" | tr -d '"' >"$tmp/rock.list"
cmp -s "$tmp/meson.list" "$tmp/rock.list" ||
    diff "$tmp/meson.list" "$tmp/rock.list" | sed 's/^/# /'
check "the rockspec builds the sources meson.build lists" \
    cmp -s "$tmp/meson.list" "$tmp/rock.list"

dest=$tmp/dest
if ! "$meson" install -C "$build" --destdir "$dest" --no-rebuild \
    >"$tmp/install.log" 2>&1; then
    sed 's/^/# /' "$tmp/install.log"
    check "meson install --destdir" false
    echo "1..$n"
    exit 1
fi
[ -n "$(find "$dest" -name 'libcapffi.so*' | head -n 1)" ] ||
    skip "this build installs no shared libcapffi, which the rock links"
pc=$(find "$dest" -name capffi.pc | head -n 1)
prefix=$(sed -n 's/^prefix=//p' "$pc")

# A copy, so that luarocks' objects stay out of the source tree; HOME too,
# so that its cache and configuration are this test's.
mkdir -p "$tmp/src/bindings" "$tmp/home"
cp "$rockspec" "$tmp/src/"
cp -R "$root/bindings/lua" "$tmp/src/bindings/lua"
tree=$tmp/tree
(cd "$tmp/src" && HOME=$tmp/home luarocks --lua-version 5.4 make \
    --tree "$tree" capffi-scm-1.rockspec CAPFFI_DIR="$dest$prefix") \
    >"$tmp/make.log" 2>&1
status=$?
if [ "$status" != 0 ] &&
    grep -qiE "failed downloading|error fetching|could not fetch|no results matching" \
        "$tmp/make.log"; then
    sed 's/^/# /' "$tmp/make.log"
    skip "luarocks could not build offline (see above)"
fi
[ "$status" = 0 ] || sed 's/^/# /' "$tmp/make.log"
check "luarocks make builds and installs the module" [ "$status" = 0 ]
module=$(find "$tree" -name capffi.so | head -n 1)
check "the module is in the rocks tree" [ -n "$module" ]
# Only public names are exported: the entry point and capffi/lua.h's
# embedding calls; the module's own functions stay inside it.
if command -v nm >/dev/null 2>&1 && [ -n "$module" ]; then
    nm -D --defined-only "$module" | awk '{ print $3 }' |
        grep -v -e '^luaopen_capffi$' -e '^capffi_lua_open$' \
            -e '^capffi_lua_ctx$' -e '^_' >"$tmp/exported"
    sed 's/^/# exported: /' "$tmp/exported"
    check "the rock's capffi.so exports only public names" \
        [ ! -s "$tmp/exported" ]
fi

libdir=$(dirname "$(find "$dest" -name 'libcapffi.so*' | head -n 1)")
run() { # run ENV... -- prints the script's output
    env -u CAPFFI_ALLOW_FFI -u CAPFFI_DENY_FFI LUA_PATH= \
        LUA_CPATH="$(dirname "$module")/?.so" LD_LIBRARY_PATH="$libdir" \
        "$@" lua5.4 -e '
      local capffi = require "capffi"
      io.write(package.searchpath("capffi", package.cpath), "\n")
      local ok, m = pcall(function()
        return capffi.token():dlopen("libm.so.6", { cos = "(f64) -> f64" })
      end)
      print(ok and ("cos " .. m.cos(0)) or m.code)' 2>&1
}
out=$(run CAPFFI_ALLOW_FFI=libm.so.6)
echo "$out" | sed 's/^/# /'
check "granted by CAPFFI_ALLOW_FFI, lua5.4 calls cos from the rock" \
    [ "$out" = "$module
cos 1.0" ]
out=$(run)
check "without CAPFFI_ALLOW_FFI, the token is refused" \
    [ "$out" = "$module
CAPFFI_EPERM" ]
out=$(run CAPFFI_DENY_FFI=libm.so.6,)
echo "$out" | sed 's/^/# /'
case $out in
*"CAPFFI_DENY_FFI: empty or overlong path in 'libm.so.6,'"*) bad=0 ;;
*) bad=1 ;;
esac
check "a bad CAPFFI_DENY_FFI fails the require, naming it" [ "$bad" = 0 ]

echo "1..$n"
exit "$failed"
