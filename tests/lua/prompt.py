#!/usr/bin/env python3
"""capffi-lua --prompt: permissions.request asks on the terminal.

usage: prompt.py RUNNER FIXTURE

Runs the runner on a pseudo-terminal and answers its question, then
without a terminal at all. Prints TAP. Where no pseudo-terminal can be
opened (a container without /dev/pts, or CAPFFI_TEST_NO_PTY set, which
only the pty tests (this and repl.py) read, to try that path), it prints
"1..0 # SKIP" with the reason, which meson counts as skipped.
"""
import os
import pty
import subprocess
import sys
import tempfile

import ptytap

RUNNER, FIXTURE = sys.argv[1], sys.argv[2]

SCRIPT = r"""
local capffi = require "capffi"
local p = capffi.permissions
local what = arg[1] ~= "" and arg[1] or nil
print("before", p.query(what))
print("request", p.request(what))
print("after", p.query(what))
print("dlopen", (pcall(capffi.dlopen, os.getenv("CAPFFI_FIXTURE"), {})))
"""


ptytap.skip_without_pty()
tap = ptytap.Tap()
check = tap.check


def on_tty(script, what, answer):
    """Run on a new pseudo-terminal, answering the question once."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(RUNNER, [RUNNER, "--prompt", script, what])
    out = b""
    asked = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not asked and b"allow FFI for" in out:
            asked = True
            os.write(fd, answer + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace"), asked


def lines(text):
    return dict(l.split("\t", 1) for l in text.replace("\r", "").splitlines()
                if "\t" in l)


with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
    f.write(SCRIPT)
    script = f.name
try:
    status, out, asked = on_tty(script, FIXTURE, b"y")
    r = lines(out)
    check("yes_grants_the_file", status == 0 and asked and
          r.get("before") == "prompt" and r.get("request") == "granted" and
          r.get("after") == "granted" and r.get("dlopen") == "true", out)
    check("the_question_names_the_file",
          os.path.realpath(FIXTURE) in out, out)

    status, out, asked = on_tty(script, FIXTURE, b"n")
    r = lines(out)
    check("no_denies_and_asks_again_later", status == 0 and asked and
          r.get("request") == "denied" and r.get("after") == "prompt" and
          r.get("dlopen") == "false", out)

    status, out, asked = on_tty(script, "", b"y")
    r = lines(out)
    check("unscoped_request", status == 0 and asked and
          r.get("request") == "granted" and r.get("after") == "granted" and
          "every library and every right" in out, out)

    # No controlling terminal: never read standard input, deny.
    p = subprocess.run([RUNNER, "--prompt", script, FIXTURE],
                       input="y\n", capture_output=True, text=True,
                       start_new_session=True, timeout=60)
    r = lines(p.stdout)
    check("no_terminal_denies", p.returncode == 0 and
          r.get("before") == "prompt" and r.get("request") == "denied" and
          "no terminal" in p.stderr, p.stdout + p.stderr)

    # Without --prompt there is nobody to ask.
    p = subprocess.run([RUNNER, script, FIXTURE], capture_output=True,
                       text=True, timeout=60)
    r = lines(p.stdout)
    check("without_prompt_denied", p.returncode == 0 and
          r.get("before") == "denied" and r.get("request") == "denied",
          p.stdout + p.stderr)

    # Where no pseudo-terminal opens, the whole test is skipped, with the
    # reason, and nothing is run.
    p = subprocess.run([sys.executable, __file__, RUNNER, FIXTURE],
                       env=dict(os.environ, CAPFFI_TEST_NO_PTY="1"),
                       capture_output=True, text=True, timeout=60)
    check("skips_with_its_reason_without_a_pty", p.returncode == 0 and
          p.stdout == "1..0 # SKIP no pseudo-terminal can be opened: "
          "[Errno 19] CAPFFI_TEST_NO_PTY is set\n" and not p.stderr,
          p.stdout + p.stderr)
finally:
    os.unlink(script)

tap.finish()
