#!/bin/sh
# Fails when a C file under include/, src/, tests/, bench/, examples/,
# fuzz/ or bindings/ differs from what .clang-format asks for.
# usage: check_format.sh SOURCE_ROOT CLANG_FORMAT
set -eu
root=$1
cf=$2
cd "$root"
files=$(find include src tests bench examples fuzz bindings \
        -name '*.[ch]' -not -path '*/corpus/*' 2>/dev/null | sort)
[ -n "$files" ] || { echo "no files to check"; exit 1; }
status=0
for f in $files; do
    if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: $cf -i --style=file $f)"
        status=1
    fi
done
exit $status
