#!/usr/bin/env python3
"""Checks that the documentation still matches the library.

usage: check_docs.py SOURCE_ROOT LIBCAPFFI [--cc="CC ARGS"] [--cflags="..."]

Output is TAP, one test point per check.

1. The reference follows the headers. The public functions are read from
   include/capffi.h and include/capffi/*.h at test time (every declaration
   marked CAPFFI_API). docs/API.md must give each of them
   - a section heading naming it in backticks (### `capffi_x_y`, or one
     heading for a few related functions: ### `capffi_a`, `capffi_b`), and
   - its prototype in a declaration block (below).
   The module table must list each header (`capffi/x.h`) and no other,
   and each capffi_ name in a heading must still be declared in a header.

2. The code blocks compile. In docs/*.md and README.md, a fenced ```c block
   is checked when it claims to compile, which it does in one of three ways:
   - a whole program: the block defines main(). It is compiled with
     -std=c11 -pedantic -Wall -Wextra -Werror against include/ and linked
     against the built libcapffi, as a user of the library would.
   - a declaration block in docs/API.md: it holds only declarations, among
     them prototypes of capffi_ functions or typedefs without a body. Those
     are compiled after #include <capffi.h>; C accepts a repeated
     declaration only when it agrees with the first, so one that differs
     from the header's is a conflicting-types error. Struct and enum
     definitions in the block are for reading and are left out. Each
     function it declares must be public, each typedef in a header.
   - a marked fragment: the line just above the fence is
     <!-- compile -->. The block is compiled, not linked, as a translation
     unit after #include <capffi.h>.
   Any other block is an illustration (statements that assume a ctx or a
   token made earlier, shell, Lua, output) and is not compiled.

Exits 0 when every check passes, 1 otherwise. When no C compiler can be
run, the compile checks cannot be made and the whole test is skipped.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

CFLAGS = ["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror"]
MARKER = "<!-- compile -->"


def blank(m):
    """Spaces for a match, keeping its newlines, so lines still count."""
    return re.sub(r"[^\n]", " ", m.group(0))


def strip_c(text):
    """Text of C code without comments and preprocessor lines, each replaced
    by blanks so that line numbers stay as they were."""
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    text = re.sub(r"//[^\n]*", blank, text)
    return re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", blank, text, flags=re.M)


def public_functions(root):
    """{name: header} for every CAPFFI_API function in the public headers."""
    headers = sorted(glob.glob(os.path.join(root, "include", "capffi", "*.h")))
    headers.append(os.path.join(root, "include", "capffi.h"))
    found = {}
    alltext = []
    for h in headers:
        with open(h, encoding="utf-8") as f:
            raw = f.read()
        alltext.append(raw)
        for m in re.finditer(r"\bCAPFFI_API\b[^;{}()]*?\b([A-Za-z_]\w*)\s*\(",
                             strip_c(raw)):
            found.setdefault(m.group(1), os.path.relpath(h, root))
    return found, headers, "\n".join(alltext)


def fenced_blocks(path):
    """(line, lang, body, marked) for every fenced block of a Markdown file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        m = re.match(r"^( *)(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3)
        marked = i > 0 and lines[i - 1].strip() == MARKER
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = "\n".join(l[indent:] if l[:indent].isspace() else l.lstrip()
                         for l in lines[i + 1:j])
        blocks.append((i + 1, lang, body, marked))
        i = j + 1
    return blocks


def statements(code):
    """(start, end) of each top-level statement of C code, split at
    semicolons outside braces and parentheses; the semicolon is included."""
    spans, depth, begin = [], 0, 0
    for i, ch in enumerate(code):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == ";" and depth == 0:
            spans.append((begin, i + 1))
            begin = i + 1
    if code[begin:].strip():
        spans.append((begin, len(code)))
    return [(a, b) for a, b in spans if code[a:b].strip(" \n\t;")]


PROTO = re.compile(r"(?:const\s+)?[A-Za-z_]\w*[\s*]+(?:\w+[\s*]+)*?"
                   r"(capffi_\w+)\s*\(([^()]|\([^()]*\))*\)\s*;")
TYPEDEF = re.compile(r"typedef\b[^{;]*?(?:\(\s*\*\s*(\w+)\s*\)[^{;]*|"
                     r"\b(\w+)\s*);")


def declarations(body):
    """For a block made only of declarations: the names it declares and the
    code to compile, which keeps the prototypes of capffi_ functions and the
    typedefs without a body (C lets a program repeat both when they agree
    with the first) and blanks out the rest, keeping lines where they were.
    None when the block holds anything else: statements, definitions."""
    code = strip_c(body)
    names, types, out = [], [], list(code)
    for a, b in statements(code):
        s = code[a:b].strip()
        first = s.split()[0]
        proto = PROTO.fullmatch(s)
        tdef = TYPEDEF.fullmatch(s)
        if proto and first not in ("return", "typedef", "else", "case"):
            names.append(proto.group(1))
        elif tdef:
            types.append(tdef.group(1) or tdef.group(2))
        elif re.match(r"(typedef\s+)?(struct|union|enum)\b[^;]*\{", s):
            # a type's definition: shown for reading, not repeatable in C
            out[a:b] = re.sub(r"[^\n]", " ", code[a:b])
        else:
            return None
    if not names and not types:
        return None
    return names, types, "".join(out)


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def point(self, ok, what, detail=""):
        self.n += 1
        print(("ok" if ok else "not ok") + " %d - %s" % (self.n, what))
        if not ok:
            self.failed += 1
            for line in detail.rstrip().split("\n"):
                if line:
                    print("# " + line)


def compile_block(cc, cflags, root, lib, source, link, workdir):
    """Compile (and link, if asked) one block; returns (ok, messages)."""
    src = os.path.join(workdir, "block.c")
    with open(src, "w", encoding="utf-8") as f:
        f.write(source)
    cmd = cc + CFLAGS + cflags + ["-I", os.path.join(root, "include")]
    if link:
        cmd += [src, lib, "-o", os.path.join(workdir, "block")]
    else:
        cmd += ["-c", src, "-o", os.path.join(workdir, "block.o")]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode == 0, " ".join(cmd) + "\n" + p.stdout


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in argv[1:]
                if a.startswith("--") and "=" in a)
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    root, lib = args[0], os.path.abspath(args[1])
    cc = shlex.split(opts.get("cc") or os.environ.get("CC", "cc"))
    cflags = shlex.split(opts.get("cflags", ""))
    if not cc or shutil.which(cc[0]) is None:
        print("1..0 # SKIP no C compiler (%s) to compile the docs' code"
              % (" ".join(cc) or "none"))
        return 0

    tap = Tap()
    api_path = os.path.join(root, "docs", "API.md")
    with open(api_path, encoding="utf-8") as f:
        api = f.read()
    funcs, headers, header_text = public_functions(root)
    tap.point(len(funcs) > 0, "public functions found in the headers",
              "no CAPFFI_API declaration in include/")

    # 1. The reference follows the headers.
    headed = set()
    for line in api.split("\n"):
        if line.startswith("### "):
            headed.update(re.findall(r"`(capffi_\w+)`", line))
    declared = {}
    api_blocks = fenced_blocks(api_path)
    for line, lang, body, marked in api_blocks:
        if lang == "c":
            for name in (declarations(body) or ([], [], ""))[0]:
                declared.setdefault(name, line)
    for name in sorted(funcs):
        tap.point(name in headed,
                  "API.md has a section for %s (%s)" % (name, funcs[name]),
                  "add a section headed ### `%s` to docs/API.md" % name)
        tap.point(name in declared,
                  "API.md gives the prototype of %s" % name,
                  "add a ```c block with the declaration of %s under its "
                  "heading" % name)
    for h in headers:
        rel = os.path.relpath(h, os.path.join(root, "include"))
        if rel == "capffi.h":
            continue
        tap.point(re.search(r"^\| `%s` \|" % re.escape(rel), api, re.M),
                  "API.md's module table lists %s" % rel,
                  "add a row for `%s` to the module table of docs/API.md"
                  % rel)
    for rel in re.findall(r"^\| `(capffi/\w+\.h)` \|", api, re.M):
        tap.point(os.path.exists(os.path.join(root, "include", rel)),
                  "API.md's module table names an existing %s" % rel,
                  "include/%s does not exist: update the module table" % rel)
    words = set(re.findall(r"\b\w+\b", strip_c(header_text)))
    for name in sorted(headed):
        tap.point(name in words,
                  "API.md's heading %s names something in the headers" % name,
                  "%s is declared in no public header: remove or rename its "
                  "section" % name)

    # 2. The code blocks that claim to compile do.
    docs = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    docs.append(os.path.join(root, "README.md"))
    with tempfile.TemporaryDirectory(prefix="capffi-docs-") as workdir:
        for path in docs:
            rel = os.path.relpath(path, root)
            for line, lang, body, marked in fenced_blocks(path):
                where = "%s:%d" % (rel, line)
                if marked and lang != "c":
                    tap.point(False, "%s is marked to compile" % where,
                              "only ```c blocks can be compiled")
                    continue
                if lang != "c":
                    continue
                if re.search(r"\bmain\s*\([^)]*\)\s*\{",
                             strip_c(body)):
                    src = '#line %d "%s"\n%s\n' % (line + 1, path, body)
                    ok, msg = compile_block(cc, cflags, root, lib, src, True,
                                            workdir)
                    tap.point(ok, "%s (a program) compiles and links" % where,
                              msg)
                    continue
                decls = declarations(body) if path == api_path else None
                if decls is None and not marked:
                    continue
                # #line points the compiler's messages at the document.
                src = '#include <capffi.h>\n#line %d "%s"\n%s\n' % (
                    line + 1, path, decls[2] if decls else body)
                ok, msg = compile_block(cc, cflags + ["-fsyntax-only"]
                                        if decls else cflags,
                                        root, lib, src, False, workdir)
                if decls:
                    names, types = decls[0], decls[1]
                    unknown = [n for n in names if n not in funcs]
                    unknown += [t for t in types if t not in words]
                    tap.point(ok and not unknown,
                              "%s declares %s as the headers do"
                              % (where, ", ".join(names + types)),
                              msg if not ok else
                              "not in the public headers: "
                              + ", ".join(unknown))
                else:
                    tap.point(ok, "%s (marked) compiles" % where, msg)

    print("1..%d" % tap.n)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
