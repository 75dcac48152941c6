"""What the runner's pseudo-terminal tests (prompt.py, repl.py) share: the
skip when no pseudo-terminal can be opened, and TAP output.

The skip prints "1..0 # SKIP" with the reason, which meson counts as
skipped; CAPFFI_TEST_NO_PTY forces it, so the skip itself can be tested.
"""
import errno
import os
import sys


def skip_without_pty():
    """Exit with a TAP skip when no pseudo-terminal can be opened here."""
    try:
        if os.environ.get("CAPFFI_TEST_NO_PTY"):
            raise OSError(errno.ENODEV, "CAPFFI_TEST_NO_PTY is set")
        master, slave = os.openpty()
    except OSError as e:
        print(f"1..0 # SKIP no pseudo-terminal can be opened: {e}")
        sys.exit(0)
    os.close(master)
    os.close(slave)


class Tap:
    """Numbered TAP results, then the plan and the exit status."""

    def __init__(self):
        self.count = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        self.count += 1
        if cond:
            print(f"ok {self.count} - {name}")
        else:
            self.failed += 1
            print(f"not ok {self.count} - {name}")
            for line in detail.splitlines():
                print("# " + line)

    def finish(self):
        print(f"1..{self.count}")
        sys.exit(1 if self.failed else 0)
