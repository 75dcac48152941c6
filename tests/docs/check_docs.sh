#!/bin/sh
# Runs check_docs.py (its comment says what is checked), or skips the test
# when there is no python3 to run it.
# usage: check_docs.sh SOURCE_ROOT LIBCAPFFI [--cc="CC"] [--cflags="..."]
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 not found: the docs are not checked"
    exit 0
fi
exec python3 "$(dirname "$0")/check_docs.py" "$@"
