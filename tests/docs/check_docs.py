#!/usr/bin/env python3
"""Checks that the documentation still matches the library.

usage: check_docs.py SOURCE_ROOT LIBCAPFFI [--cc="CC ARGS"] [--cflags="..."]
                     [--lua=CAPFFI_LUA]

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

3. Every block of the guides held to it (STRICT: docs/embedding.md,
   docs/testing.md, docs/lua.md) is checked, or says why not:
   - ```c: a whole program is compiled, linked and run (it must exit 0);
     any other block is compiled as a marked fragment is (<!-- compile -->
     is the default there).
   - ```lua: run by the capffi-lua runner (--lua=PATH) in an empty
     directory, with --allow-ffi unless the block says otherwise; it must
     exit 0.
   - ```sh, ```text, ```ini, ```meson, ```json: labelled as not checked
     (shell commands, output, other languages). A block with no label or
     another one fails.
   Comments on the lines just above the fence adjust a check:
   - <!-- excerpt: PATH --> the block is a part of PATH (a file of the
     tree that a test builds or runs, such as an example): its lines must
     appear there, in order and together, indentation aside. Nothing else
     is checked.
   - <!-- setup: CODE --> (may span lines) CODE is put before the block
     when it is checked; a line "..." in CODE says where the block goes
     instead. For fragments that use what the text around them made.
   - <!-- run: FLAGS --> the runner's flags for a ```lua block ("" for
     none).
   - <!-- pkg-config: NAMES --> a C program also builds with these
     packages' flags; without pkg-config or one of them, the block is
     skipped (a TAP skip with the reason), never failed.
   - <!-- needs: LIBS --> the block loads these shared libraries
     (sonames); when one cannot be loaded here, the block is skipped.

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
    """(line, lang, body, marked, directives) for every fenced block of a
    Markdown file."""
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
        directives = comments_above(lines, i)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = "\n".join(l[indent:] if l[:indent].isspace() else l.lstrip()
                         for l in lines[i + 1:j])
        blocks.append((i + 1, lang, body, marked, directives))
        i = j + 1
    return blocks


DIRECTIVE = re.compile(r"<!--\s*([\w-]+)(?::[ \t]?(.*?))?\s*-->", re.S)


def comments_above(lines, i):
    """{name: text} of the <!-- name: text --> comments on the lines just
    above line i, up to the first line that is not part of one."""
    found = {}
    j = i
    while j > 0:
        end = j - 1
        if not lines[end].rstrip().endswith("-->"):
            break
        start = end
        while start >= 0 and "<!--" not in lines[start]:
            start -= 1
        if start < 0:
            break
        m = DIRECTIVE.fullmatch("\n".join(lines[start:end + 1]).strip())
        if not m:
            break
        found.setdefault(m.group(1), m.group(2) or "")
        j = start
    return found


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

    def skip(self, what, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, what, why))

    def point(self, ok, what, detail=""):
        self.n += 1
        print(("ok" if ok else "not ok") + " %d - %s" % (self.n, what))
        if not ok:
            self.failed += 1
            for line in detail.rstrip().split("\n"):
                if line:
                    print("# " + line)


def compile_block(cc, cflags, root, lib, source, link, workdir, extra=()):
    """Compile (and link, if asked) one block; returns (ok, messages)."""
    src = os.path.join(workdir, "block.c")
    with open(src, "w", encoding="utf-8") as f:
        f.write(source)
    cmd = cc + CFLAGS + cflags + ["-I", os.path.join(root, "include")]
    if link:
        cmd += [src, lib] + list(extra) + ["-o",
                                           os.path.join(workdir, "block")]
    else:
        cmd += list(extra) + ["-c", src, "-o",
                              os.path.join(workdir, "block.o")]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    return p.returncode == 0, " ".join(cmd) + "\n" + p.stdout


# The guides whose every block is checked (part 3 of the comment above).
STRICT = ("docs/embedding.md", "docs/testing.md", "docs/lua.md")
# Labels of blocks that are not code to check: commands, output, files of
# other tools. Anything else in a STRICT guide must be ```c or ```lua.
UNCHECKED = ("sh", "text", "ini", "meson", "json")
LUA_FLAGS = ["--allow-ffi"]


def is_program(body):
    return re.search(r"\bmain\s*\([^)]*\)\s*\{", strip_c(body)) is not None


def ctx_of(cc, cflags, root, lib, lua, workdir):
    return {"cc": cc, "cflags": cflags, "root": root, "lib": lib,
            "lua": lua, "workdir": workdir}


def with_setup(body, setup):
    """The block with the text of its <!-- setup --> put around it."""
    if not setup:
        return body
    lines = setup.split("\n")
    if "..." in [l.strip() for l in lines]:
        k = [l.strip() for l in lines].index("...")
        return "\n".join(lines[:k]) + "\n" + body + "\n" + \
            "\n".join(lines[k + 1:])
    return setup + "\n" + body


def is_excerpt(body, text):
    """Whether the lines of body appear in text in order and together,
    each compared without its indentation (blank lines of body aside)."""
    want = [l.strip() for l in body.split("\n") if l.strip()]
    have = [l.strip() for l in text.split("\n") if l.strip()]
    return any(have[k:k + len(want)] == want
               for k in range(len(have) - len(want) + 1)) if want else False


def missing_libs(names):
    """The first of these sonames that cannot be loaded here, or None."""
    import ctypes
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            return name
    return None


def pkg_flags(names):
    """(flags, None) for pkg-config's --cflags --libs of names, or (None,
    why not)."""
    if shutil.which("pkg-config") is None:
        return None, "no pkg-config to find " + " ".join(names)
    for name in names:
        if subprocess.run(["pkg-config", "--exists", name]).returncode:
            return None, "%s not found by pkg-config" % name
    p = subprocess.run(["pkg-config", "--cflags", "--libs"] + names,
                       stdout=subprocess.PIPE, universal_newlines=True)
    return shlex.split(p.stdout), None


def run(cmd, cwd, env=None):
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        return False, " ".join(cmd) + "\ntimed out after 60 s"
    return p.returncode == 0, "%s\nexit status %d\n%s" % (
        " ".join(cmd), p.returncode, p.stdout)


def check_strict(tap, c, path, where, line, lang, body, directives):
    """One block of a STRICT guide: checked, skipped with a reason, or a
    failure when it is neither checked nor labelled as unchecked."""
    if "excerpt" in directives:
        src = os.path.join(c["root"], directives["excerpt"].strip())
        ok = os.path.isfile(src)
        if ok:
            with open(src, encoding="utf-8") as f:
                ok = is_excerpt(body, f.read())
        tap.point(ok, "%s is an excerpt of %s" % (where,
                                                 directives["excerpt"]),
                  "its lines are not all in that file, in order: copy them "
                  "from it again")
        return
    if lang in UNCHECKED:
        return
    if lang not in ("c", "lua"):
        tap.point(False, "%s is checked or labelled" % where,
                  "label the block ```c or ```lua to have it checked, or "
                  "one of %s to say it is not code to check (an unlabelled "
                  "block is neither)" % ", ".join(UNCHECKED))
        return
    needs = directives.get("needs", "").split()
    lacking = missing_libs(needs)
    code = with_setup(body, directives.get("setup", ""))
    workdir = c["workdir"]
    if lang == "lua":
        what = "%s (Lua) runs" % where
        if not c["lua"]:
            tap.skip(what, "no capffi-lua runner (built without Lua)")
            return
        if lacking:
            tap.skip(what, "%s cannot be loaded here" % lacking)
            return
        script = os.path.join(workdir, "block.lua")
        with open(script, "w", encoding="utf-8") as f:
            f.write(code + "\n")
        flags = shlex.split(directives["run"]) if "run" in directives \
            else LUA_FLAGS
        ok, msg = run([c["lua"]] + flags + [script], workdir)
        tap.point(ok, what, msg)
        return
    extra = []
    if "pkg-config" in directives:
        extra, why = pkg_flags(directives["pkg-config"].split())
        if extra is None:
            tap.skip("%s compiles" % where, why)
            return
    if not is_program(code):
        src = '#include <capffi.h>\n#line %d "%s"\n%s\n' % (line + 1, path,
                                                          code)
        ok, msg = compile_block(c["cc"], c["cflags"], c["root"], c["lib"],
                                src, False, workdir, extra)
        tap.point(ok, "%s compiles" % where, msg)
        return
    src = '#line %d "%s"\n%s\n' % (line + 1, path, code)
    ok, msg = compile_block(c["cc"], c["cflags"], c["root"], c["lib"], src,
                            True, workdir, extra)
    what = "%s (a program) compiles, links and runs" % where
    if not ok:
        tap.point(False, what, msg)
        return
    if lacking:
        tap.skip(what, "built; not run: %s cannot be loaded here" % lacking)
        return
    env = dict(os.environ)
    libdir = os.path.dirname(c["lib"])
    env["LD_LIBRARY_PATH"] = libdir + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    ok, msg = run([os.path.join(workdir, "block")], workdir, env)
    tap.point(ok, what, msg)


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
    lua = opts.get("lua") or None
    if lua:
        lua = os.path.abspath(lua) if os.path.exists(lua) else None
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
    for line, lang, body, marked, _ in api_blocks:
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

    # 2. The code blocks that claim to compile do; 3. in the guides held
    # to it, every block is checked or labelled as not checked.
    docs = sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    docs.append(os.path.join(root, "README.md"))
    with tempfile.TemporaryDirectory(prefix="capffi-docs-") as workdir:
        for path in docs:
            rel = os.path.relpath(path, root)
            strict = rel in STRICT
            for line, lang, body, marked, directives in fenced_blocks(path):
                where = "%s:%d" % (rel, line)
                if marked and lang != "c":
                    tap.point(False, "%s is marked to compile" % where,
                              "only ```c blocks can be compiled")
                    continue
                if strict:
                    check_strict(tap, ctx_of(cc, cflags, root, lib, lua,
                                             workdir),
                                 path, where, line, lang, body, directives)
                    continue
                if lang != "c":
                    continue
                if is_program(body):
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
