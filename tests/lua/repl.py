#!/usr/bin/env python3
"""capffi-lua's REPL, driven on a pseudo-terminal.

usage: repl.py RUNNER FIXTURE

Starts the runner on a pseudo-terminal (with no script it is interactive,
as lua5.4 is there), types entries and reads what comes back: the banner,
prompts, values, errors, continuation lines, SIGINT stopping a loop, the
grants holding in the REPL, and the end of input. Prints TAP. Where no
pseudo-terminal can be opened (a container without /dev/pts, or
CAPFFI_TEST_NO_PTY set, which only the pty tests read, to try that path),
it prints "1..0 # SKIP" with the reason, which meson counts as skipped.
"""
import os
import pty
import select
import signal
import subprocess
import sys
import time

import ptytap

RUNNER, FIXTURE = sys.argv[1], sys.argv[2]
TIMEOUT = 30

ptytap.skip_without_pty()
tap = ptytap.Tap()
check = tap.check


class Session:
    """The runner on a new pseudo-terminal, with its output so far."""

    def __init__(self, args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(RUNNER, [RUNNER] + args)
        self.out = ""
        self.seen = 0  # where the next expect starts looking

    def read(self, wait):
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the runner has ended
            return None
        if not chunk:
            return None
        self.out += chunk.decode(errors="replace").replace("\r", "")
        return True

    def expect(self, text):
        """Wait for text after what earlier expects matched; the output
        between, or None when it never comes."""
        end = time.monotonic() + TIMEOUT
        while True:
            at = self.out.find(text, self.seen)
            if at >= 0:
                got = self.out[self.seen:at]
                self.seen = at + len(text)
                return got
            left = end - time.monotonic()
            if left <= 0 or self.read(left) is None:
                return None

    def send(self, line):
        """Type a line, and pass over its echo (which may hold "> ")."""
        os.write(self.fd, line.encode() + b"\n")
        self.expect(line)

    def finish(self):
        """Read to the end; the exit status."""
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end and self.read(end - time.monotonic()):
            pass
        try:
            _, status = os.waitpid(self.pid, 0)
        finally:
            os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


# No script on a terminal: the banner, then the REPL, with the grants.
s = Session(["--allow-ffi=" + FIXTURE])
check("banner_and_prompt", s.expect("> ") is not None and
      s.out.startswith("capffi-lua ") and "Lua 5.4" in s.out, s.out)
s.send("x = 6 * 7")
s.expect("> ")
s.send("=x")
check("equals_prints_a_value", s.expect("> ") == "\n42\n", s.out)
s.send("x + 1, 'two'")
check("an_expression_prints_its_values",
      s.expect("> ") == "\n43\ttwo\n", s.out)
s.send("for i = 1, 3 do")
check("continuation_prompt", s.expect(">> ") is not None, s.out)
s.send("io.write(i, ' ') end")
check("the_statement_runs_when_complete",
      "1 2 3 " in (s.expect("> ") or ""), s.out)
s.send("error('oops')")
got = s.expect("> ") or ""
check("an_error_is_reported_and_the_repl_goes_on",
      "stdin:1: oops" in got and "stack traceback" in got, s.out)
s.send("capffi = require 'capffi'")
s.expect("> ")
s.send("capffi.permissions.query(os.getenv('CAPFFI_FIXTURE'))")
check("the_grant_holds_in_the_repl", "granted" in (s.expect("> ") or ""),
      s.out)
s.send("capffi.permissions.query()")
check("and_nothing_more", "denied" in (s.expect("> ") or ""), s.out)
s.send("lib = capffi.dlopen(os.getenv('CAPFFI_FIXTURE'), "
       "{ fx_add_i32 = '(i32, i32) -> i32' })")
s.expect("> ")
s.send("lib.fx_add_i32(40, 2)")
check("native_calls", "\n42\n" in (s.expect("> ") or ""), s.out)
s.send("print('looping') while true do end")
s.expect("looping")  # in the loop: SIGINT now stops the code
os.kill(s.pid, signal.SIGINT)
got = s.expect("> ")
check("sigint_stops_the_running_code", got is not None and
      "interrupted!" in got, s.out)
s.send("'still here'")
check("the_repl_goes_on_after_sigint",
      "still here" in (s.expect("> ") or ""), s.out)
os.write(s.fd, b"\x04")  # end of input
status = s.finish()
check("end_of_input_ends_with_status_0", status == 0, s.out)

# -i after a script and -e, which see the same globals; os.exit.
s = Session(["-e", "y = 2", "-i", "-e", "y = y * 10"])
s.expect("> ")
s.send("y")
check("minus_i_after_minus_e", (s.expect("> ") or "").endswith("20\n"),
      s.out)
s.send("os.exit(5)")
check("os_exit_in_the_repl", s.finish() == 5, s.out)

# The REPL is not entered after -e alone, nor after a failing script.
s = Session(["-e", "print('only e')"])
check("no_repl_after_minus_e", s.finish() == 0 and "only e" in s.out and
      "> " not in s.out, s.out)
s = Session(["-i", "-e", "error('early')"])
check("no_repl_after_an_error", s.finish() == 1 and "early" in s.out and
      "> " not in s.out, s.out)

# Where no pseudo-terminal opens, the whole test is skipped, with the
# reason, and nothing is run.
p = subprocess.run([sys.executable, __file__, RUNNER, FIXTURE],
                   env=dict(os.environ, CAPFFI_TEST_NO_PTY="1"),
                   capture_output=True, text=True, timeout=60)
check("skips_with_its_reason_without_a_pty", p.returncode == 0 and
      p.stdout == "1..0 # SKIP no pseudo-terminal can be opened: "
      "[Errno 19] CAPFFI_TEST_NO_PTY is set\n" and not p.stderr,
      p.stdout + p.stderr)

tap.finish()
