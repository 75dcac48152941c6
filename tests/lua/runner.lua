-- runner.lua: capffi-lua's flags, exit statuses and audit file, checked by
-- starting the runner (CAPFFI_LUA) on small scripts.
local t = require "harness"

local RUNNER = assert(os.getenv("CAPFFI_LUA"), "CAPFFI_LUA unset")
local PYTHON = os.getenv("CAPFFI_PYTHON")
local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local DIR = assert(os.getenv("CAPFFI_FIXTURE_DIR"), "CAPFFI_FIXTURE_DIR unset")
local FIXDEP = assert(os.getenv("CAPFFI_FIXDEP"), "CAPFFI_FIXDEP unset")

local q = t.shq

local slurp = t.slurp

local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Run capffi-lua with flags on a script holding code (or, when code is
-- nil, with args alone); returns the exit status, stdout and stderr.
-- redir: more shell redirections for the runner.
local function run(flags, code, args, stdin, redir)
  local cmd = { q(RUNNER) }
  for _, f in ipairs(flags) do cmd[#cmd + 1] = q(f) end
  local script
  if code then
    script = os.tmpname()
    spit(script, code)
    cmd[#cmd + 1] = q(script)
  end
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = q(a) end
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, status = os.execute(table.concat(cmd, " ") .. " <"
    .. q(stdin or "/dev/null") .. " >" .. q(out) .. " 2>" .. q(err)
    .. (redir or ""))
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  if script then os.remove(script) end
  t.eq(how, "exit", "the runner exited (" .. tostring(status) .. ")")
  return status, o, e
end

local PROBE = [[
local capffi = require "capffi"
local function try(f, ...)
  local ok, e = pcall(f, ...)
  return ok and "ok" or e.code
end
print("all", capffi.permissions.query())
print("fixture", capffi.permissions.query(os.getenv("CAPFFI_FIXTURE")))
print("fixdep", capffi.permissions.query(os.getenv("CAPFFI_FIXDEP")))
print("libz", capffi.permissions.query("libz.so.1"))
print("token", try(capffi.token))
print("dlopen", try(capffi.dlopen, os.getenv("CAPFFI_FIXTURE"), {}))
]]

local function probe(flags)
  local status, out, err = run(flags, PROBE)
  t.eq(status, 0, "status (stderr: " .. err .. ")")
  local r = {}
  for k, v in out:gmatch("(%w+)\t(%S+)") do r[k] = v end
  return r
end

t.test("no_flag_no_ffi", function()
  local r = probe({})
  t.eq(r.all, "denied", "unscoped")
  t.eq(r.fixture, "denied", "fixture")
  t.eq(r.token, "CAPFFI_EPERM", "token")
  t.eq(r.dlopen, "CAPFFI_EPERM", "dlopen")
end)

t.test("allow_ffi_allows_everything", function()
  local r = probe({ "--allow-ffi" })
  t.eq(r.all, "granted", "unscoped")
  t.eq(r.fixture, "granted", "fixture")
  t.eq(r.libz, "granted", "libz")
  t.eq(r.token, "ok", "token")
  t.eq(r.dlopen, "ok", "dlopen")
end)

t.test("allow_ffi_paths", function()
  local r = probe({ "--allow-ffi=" .. FIXTURE .. ",libz.so.1" })
  t.eq(r.all, "denied", "unscoped")
  t.eq(r.fixture, "granted", "fixture")
  t.eq(r.fixdep, "denied", "its neighbour")
  t.eq(r.libz, "granted", "libz by soname")
  t.eq(r.dlopen, "ok", "dlopen")
  r = probe({ "--allow-ffi=" .. DIR })
  t.eq(r.fixture, "granted", "a directory covers its files")
  t.eq(r.fixdep, "granted", "every one")
end)

t.test("deny_ffi_wins", function()
  local r = probe({ "--allow-ffi", "--deny-ffi=" .. FIXTURE })
  t.eq(r.all, "granted", "the rest is allowed")
  t.eq(r.fixture, "denied", "over --allow-ffi")
  t.eq(r.dlopen, "CAPFFI_EPERM", "dlopen")
  t.eq(r.token, "ok", "tokens can still be minted")
  r = probe({ "--deny-ffi=" .. FIXTURE, "--allow-ffi=" .. FIXTURE })
  t.eq(r.fixture, "denied", "over the same path, in any order")
  r = probe({ "--allow-ffi=" .. DIR, "--deny-ffi=" .. FIXTURE })
  t.eq(r.fixture, "denied", "over an enclosing directory")
  t.eq(r.fixdep, "granted", "the rest of the directory")
  r = probe({ "--allow-ffi", "--deny-ffi=libz.so.1," .. FIXDEP })
  t.eq(r.libz, "denied", "by soname")
  t.eq(r.fixdep, "denied", "a list")
  t.eq(r.fixture, "granted", "not listed")
end)

t.test("a_token_does_not_escape_deny", function()
  local status, out = run({ "--allow-ffi", "--deny-ffi=" .. FIXTURE }, [[
    local capffi = require "capffi"
    local tok = capffi.token()
    local ok, e = pcall(tok.dlopen, tok, os.getenv("CAPFFI_FIXTURE"), {})
    print(e.code)
    ok, e = pcall(capffi.token, { paths = { os.getenv("CAPFFI_FIXTURE") } })
    print(e.code)
  ]])
  t.eq(status, 0, "status")
  t.eq(out, "CAPFFI_EPERM\nCAPFFI_EPERM\n", "refused")
end)

t.test("bad_flags", function()
  -- usage errors: a message and the usage, status 1 (as lua5.4)
  local status, out, err = run({ "--allow-ff" }, "print('ran')")
  t.eq(status, 1, "unknown option")
  t.ok(err:find("unknown option '--allow-ff'", 1, true), err)
  t.ok(err:find("usage: capffi-lua", 1, true), "the usage")
  t.eq(out, "", "nothing ran")
  status, _, err = run({ "-x" }, "")
  t.eq(status, 1, "unknown short option")
  t.ok(err:find("unknown option '-x'", 1, true), err)
  status, _, err = run({ "-ix" }, "")
  t.eq(status, 1, "extra characters")
  t.ok(err:find("unknown option '-ix'", 1, true), err)
  status, _, err = run({ "-e" }, nil)
  t.eq(status, 1, "-e without its argument")
  t.ok(err:find("'-e' needs an argument", 1, true), err)
  status, _, err = run({ "-l", "--allow-ffi" }, nil)
  t.eq(status, 1, "-l followed by an option")
  t.ok(err:find("'-l' needs an argument", 1, true), err)
  status, _, err = run({ "--allow-ffi=libcapffi-none.so.9" }, "")
  t.eq(status, 1, "unknown soname")
  t.ok(err:find("libcapffi-none.so.9", 1, true), err)
  status = run({ "--allow-ffi=" }, "")
  t.eq(status, 1, "empty list")
  status = run({ "--deny-ffi=a,,b" }, "")
  t.eq(status, 1, "empty item")
  status, _, err = run({ "--allow-ffi=/no/such/dir" }, "print('ran')")
  t.eq(status, 1, "a grant that does not exist")
  t.ok(err:find("CAPFFI_ENOTFOUND", 1, true), err)
  status = run({ "--audit=" }, "")
  t.eq(status, 1, "empty audit file name")
end)

t.test("help_and_version", function()
  local status, out = run({ "--help" }, nil)
  t.eq(status, 0, "help")
  t.ok(out:find("usage: capffi-lua", 1, true), "usage")
  for _, flag in ipairs{ "--allow-ffi", "--deny-ffi", "--allow-run", "--prompt",
                         "--audit", "--safe", "-e stat", "-l mod", "-l g=mod",
                         "-i ", "-v ", "-E ", "-W ", "-- ", "- " } do
    t.ok(out:find(flag, 1, true), flag)
  end
  status, out = run({ "--version" }, nil)
  t.eq(status, 0, "version")
  t.ok(out:match("^capffi%-lua %d+%.%d+%.%d+, Lua 5%.4"), out)
  local o2
  status, o2 = run({ "-v" }, nil)
  t.eq(status, 0, "-v")
  t.ok(o2:match("^capffi%-lua %d+%.%d+%.%d+, Lua 5%.4"), o2)
  t.eq(select(2, run({ "-v", "-e", "print'x'" }, nil)):match("\n(.*)$"),
       "x\n", "-v then -e")
end)

-- What the runner runs besides a script, as lua5.4: -e, -l, standard
-- input, in lua5.4's order, each with the runner's grants.
t.test("execute_strings", function()
  local status, out, err = run({ "-e", "print(1 + 1)", "-eprint'two'" }, nil)
  t.eq(status, 0, "status (" .. err .. ")")
  t.eq(out, "2\ntwo\n", "both, in order, and no REPL or stdin after")
  -- -e runs with the grants, wherever the grant flags are
  local q = "print(require('capffi').permissions.query())"
  status, out = run({ "-e", q, "--allow-ffi" }, nil)
  t.eq(out, "granted\n", "a grant after -e holds for it")
  status, out = run({ "-e", q }, nil)
  t.eq(out, "denied\n", "no grant, no FFI")
  status, out = run({ "--deny-ffi=" .. FIXTURE, "--allow-ffi", "-e",
    "print(select(2, pcall(require('capffi').dlopen, os.getenv('CAPFFI_FIXTURE'), {})).code)" }, nil)
  t.eq(out, "CAPFFI_EPERM\n", "a denial holds for -e")
  -- the script's arg table; no script: the runner at 0
  status, out = run({ "-e", "print(arg[0] == os.getenv('CAPFFI_LUA'), arg[1], arg[2], #arg)" }, nil)
  t.eq(out, "true\t-e\tprint(arg[0] == os.getenv('CAPFFI_LUA'), arg[1], arg[2], #arg)\t2\n",
       "arg without a script")
  status, out = run({ "-e", "x = 5" }, "print(x, arg[0] ~= nil, ...)", { "a" })
  t.eq(status, 0, "-e then the script")
  t.eq(out, "5\ttrue\ta\n", "-e runs first, in the script's globals")
  -- errors: status 1, the message and a traceback, nothing after
  status, out, err = run({ "-e", "error('bad')", "-e", "print('after')" }, "print('script')")
  t.eq(status, 1, "an error in -e")
  t.eq(out, "", "nothing after it ran")
  t.ok(err:find("capffi-lua: (command line):1: bad", 1, true), err)
  t.ok(err:find("stack traceback", 1, true), "a traceback")
  status, _, err = run({ "-e", "this is not Lua" }, nil)
  t.eq(status, 1, "a syntax error in -e")
  t.ok(err:find("(command line):1:", 1, true), err)
  status, _, err = run({ "-e", "\27Lua" }, nil)
  t.eq(status, 1, "a binary chunk in -e")
  t.ok(err:find("binary chunk", 1, true), err)
  status = run({ "-e", "os.exit(4)" }, "print('script')")
  t.eq(status, 4, "os.exit in -e")
end)

t.test("require_libraries", function()
  local dir = os.tmpname()
  os.remove(dir)
  t.eq(os.execute("mkdir " .. q(dir)), true, "mkdir")
  spit(dir .. "/cfmod.lua", "n = (n or 0) + 1\nreturn { n = n, name = ... }")
  spit(dir .. "/cfbad.lua", "error('cfbad fails')")
  t.eq(os.execute("cp " .. q(FIXTURE) .. " " .. q(dir .. "/cfnative.so")),
       true, "cp")
  local path = "LUA_PATH=" .. q(dir .. "/?.lua") .. " LUA_CPATH="
    .. q(dir .. "/?.so") .. " "
  local function lrun(flags, code)
    local cmd = { path .. q(RUNNER) }
    for _, f in ipairs(flags) do cmd[#cmd + 1] = q(f) end
    local out, err = os.tmpname(), os.tmpname()
    local script
    if code then
      script = os.tmpname()
      spit(script, code)
      cmd[#cmd + 1] = q(script)
    end
    local _, _, status = os.execute(table.concat(cmd, " ") .. " </dev/null >"
      .. q(out) .. " 2>" .. q(err))
    local o, e = slurp(out), slurp(err)
    os.remove(out)
    os.remove(err)
    if script then os.remove(script) end
    return status, o, e
  end
  local status, out, err = lrun({ "-l", "cfmod", "-e", "print(cfmod.n, cfmod.name)" })
  t.eq(status, 0, "status (" .. err .. ")")
  t.eq(out, "1\tcfmod\n", "-l mod: the global mod")
  status, out = lrun({ "-lm=cfmod", "-e", "print(m.n, cfmod, n)" })
  t.eq(out, "1\tnil\t1\n", "-l g=mod: the global g")
  -- order: -e and -l run as given
  status, out = lrun({ "-e", "n = 10", "-l", "cfmod", "-e", "print(cfmod.n)" })
  t.eq(out, "11\n", "-e before -l")
  status, out = lrun({ "-l", "cfmod", "-e", "n = 10", "-l", "c2=cfmod",
                       "-e", "print(cfmod.n, c2 == cfmod)" })
  t.eq(out, "1\ttrue\n", "a module is required once")
  status, out = lrun({ "-l", "cf=capffi", "--allow-ffi", "-e",
                       "print(cf.permissions.query())" })
  t.eq(out, "granted\n", "capffi itself, with the grants")
  status, _, err = lrun({ "-E", "-l", "cfmod" })
  t.eq(status, 1, "-E: LUA_PATH is not read")
  t.ok(err:find("module 'cfmod' not found", 1, true), err)
  status, _, err = lrun({ "-W", "-e", "warn('cfwarn')" })
  t.eq(status, 0, "-W")
  t.ok(err:find("Lua warning: cfwarn", 1, true), err)
  status, _, err = lrun({ "-e", "warn('cfwarn')" })
  t.eq(err, "", "warnings are off without -W")
  status, out, err = lrun({ "-l", "cfbad", "-e", "print('after')" })
  t.eq(status, 1, "a module that fails")
  t.eq(out, "", "nothing after it")
  t.ok(err:find("cfbad fails", 1, true), err)
  status, _, err = lrun({ "-l", "cfnone" })
  t.eq(status, 1, "no such module")
  t.ok(err:find("module 'cfnone' not found", 1, true), err)
  -- a C module goes through the FFI permission, as require does
  status, _, err = lrun({ "-l", "cfnative" })
  t.eq(status, 1, "a C module without a grant")
  t.ok(err:find("needs FFI permission", 1, true), err)
  status, _, err = lrun({ "--allow-ffi=" .. dir, "-l", "cfnative" })
  os.execute("rm -rf " .. q(dir))
  t.eq(status, 1, "granted, it loads (and has no luaopen_cfnative)")
  t.ok(err:find("luaopen_cfnative", 1, true), err)
  t.ok(not err:find("needs FFI permission", 1, true), err)
end)

t.test("stdin_and_end_of_options", function()
  local path = os.tmpname()
  spit(path, "print('from stdin', ...)")
  -- no script, no -e: standard input (not a terminal here)
  local status, out = run({}, nil, nil, path)
  t.eq(status, 0, "status")
  t.eq(out, "from stdin\n", "standard input ran")
  status, out = run({ "-e", "print'e'" }, nil, { "-", "x" }, path)
  t.eq(out, "e\nfrom stdin\tx\n", "-e, then - with its arguments")
  status, out = run({ "-e", "print'e'" }, nil, nil, path)
  t.eq(out, "e\n", "with -e alone, standard input is not read")
  -- after --, "-" is a file of that name and options are arguments
  local status2, _, err = run({ "--" }, nil, { "-" }, path)
  t.eq(status2, 1, "-- -: a file named -")
  t.ok(err:find("cannot open -", 1, true), err)
  status, out = run({ "--", "-" }, nil, nil, path)
  t.eq(status, 1, "the same, written with run's flags")
  status, out = run({ "-" }, nil, { "-e", "x" }, path)
  t.eq(out, "from stdin\t-e\tx\n", "options after - are arguments")
  os.remove(path)
  status, out = run({ "-e", "x=1" }, nil, { "--", "-v" })
  t.eq(status, 1, "a script named -v after --")
end)

t.test("interactive_without_a_terminal", function()
  -- -i reads entries from standard input, prints expressions' values,
  -- reports errors and goes on; the grants hold there too
  local path = os.tmpname()
  spit(path, table.concat({
    "x = 20", "=x", "x + 1", "for i = 1, 2 do", "  io.write(i, ';')", "end",
    "error('oops')", "return 'after', nil", "require('capffi').permissions.query()",
    "os.exit(6)" }, "\n") .. "\n")
  local status, out, err = run({ "-i", "--allow-ffi", "-e", "y = 1" }, nil,
    nil, path)
  os.remove(path)
  t.eq(status, 6, "os.exit leaves with its status")
  t.ok(out:find("^capffi%-lua %d+%.%d+%.%d+, Lua 5%.4"), "the version first")
  t.ok(out:find("> 20\n", 1, true), "=x")
  t.ok(out:find("> 21\n", 1, true), "an expression")
  t.ok(out:find(">> >> 1;2;> ", 1, true), "continuation lines")
  t.ok(out:find("> after\tnil\n", 1, true), "several values")
  t.ok(out:find("> granted\n", 1, true), "the grants")
  t.ok(err:find("stdin:1: oops", 1, true), err)
  t.ok(not err:find("capffi-lua:", 1, true), "no program name on REPL errors")
end)

t.test("script_arguments", function()
  local status, out = run({ "--allow-ffi" }, [[
    print(#arg, arg[1], arg[2], select("#", ...), ...)
    print(arg[-1], arg[0]:match("^/") ~= nil)
  ]], { "one", "two words" })
  t.eq(status, 0, "status")
  t.eq(out, "2\tone\ttwo words\t2\tone\ttwo words\n--allow-ffi\ttrue\n",
       "arg and ...")
  status, out = run({ "--" }, [[print(arg[-1], #arg, ...)]], { "--help" })
  t.eq(status, 0, "after --")
  t.eq(out, "--\t1\t--help\n", "options end at --")
end)

t.test("script_from_stdin", function()
  local path = os.tmpname()
  spit(path, "print(require('capffi').permissions.query(), ...)")
  local status, out = run({ "--allow-ffi" }, nil, { "-", "x" }, path)
  os.remove(path)
  t.eq(status, 0, "status")
  t.eq(out, "granted\tx\n", "ran")
end)

t.test("errors_exit_with_status_1", function()
  local status, _, err = run({}, [[require("capffi").token{ label = "x" }]])
  t.eq(status, 1, "uncaught capffi error")
  t.ok(err:find("CAPFFI_EPERM: token:", 1, true), err)
  t.ok(err:find("stack traceback", 1, true), "a traceback")
  status, _, err = run({}, [[error({})]])
  t.eq(status, 1, "a table error")
  t.ok(err:find("error object is a table value", 1, true), err)
  status, _, err = run({}, [[this is not Lua]])
  t.eq(status, 1, "syntax error")
  status, _, err = run({}, [[os.exit(7)]])
  t.eq(status, 7, "os.exit")
  status = run({}, [[os.exit(true)]])
  t.eq(status, 0, "os.exit(true)")
end)

-- Check one JSON Lines text: each line an object with the documented keys.
local function check_jsonl(text, path)
  local n = 0
  for line in text:gmatch("[^\n]+") do
    n = n + 1
    for _, key in ipairs{ "seq", "time_ns", "op", "status", "reason", "token",
                          "parent", "label", "rights", "target", "detail" } do
      t.ok(line:find('"' .. key .. '":', 1, true), key .. " in " .. line)
    end
  end
  if PYTHON then
    local ok, how, code = os.execute(q(PYTHON) .. " -c " .. q([[
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    obj = json.loads(line)
    assert isinstance(obj, dict) and isinstance(obj["seq"], int), line
    assert obj["status"].startswith("CAPFFI_"), line
]]) .. " " .. q(path))
    t.eq(code, 0, "every line parses as JSON")
  end
  return n
end

t.test("audit_file", function()
  local path = os.tmpname()
  local status, out, err = run({ "--allow-ffi=" .. FIXTURE, "--audit=" .. path }, [[
    collectgarbage("stop") -- a collected library's close would be audited
    local capffi = require "capffi"
    local a = capffi.audit
    local m = a.mark()
    local tok = capffi.token{ label = "audited \"quoted\"" }
    tok:dlopen(os.getenv("CAPFFI_FIXTURE"), { fx_nop = "() -> void" }).fx_nop()
    pcall(tok.dlopen, tok, "libz.so.1", {})
    tok:revoke()
    local ok, report = a.expect(m, {
      "token.new ok", "lib.open ok */libcapffi_fixture.so", "lib.bind ok fx_nop",
      "lib.open EPERM */libz.so.1*", "token.revoke ok",
    }, { ordered = true, exact = true })
    print(#a.events())
    print(ok and "as expected" or report)
  ]])
  t.eq(status, 0, "status (" .. err .. ")")
  local seen, verdict = out:match("^(%d+)\n(.*)\n$")
  t.ok(verdict == "as expected", verdict or out)
  local text = slurp(path)
  local n = check_jsonl(text, path)
  os.remove(path)
  t.ok(n >= tonumber(seen), "every event the script saw, and the closing ones")
  t.ok(text:find('"op":"lib.open","status":"CAPFFI_OK"', 1, true), "the open")
  t.ok(text:find('"op":"lib.open","status":"CAPFFI_EPERM"', 1, true), "the refusal")
  t.ok(text:find('"op":"token.revoke"', 1, true), "the revocation")
  t.ok(text:find('audited \\"quoted\\"', 1, true), "escaped label")
end)

t.test("audit_file_after_errors_and_exit", function()
  local path = os.tmpname()
  local status = run({ "--audit=" .. path }, [[
    pcall(require("capffi").token)
    error("boom")
  ]])
  t.eq(status, 1, "error")
  local text = slurp(path)
  t.ok(text:find('"op":"token.new","status":"CAPFFI_EPERM"', 1, true), "written")
  check_jsonl(text, path)
  status = run({ "--audit=" .. path }, [[
    pcall(require("capffi").token)
    os.exit(3)
  ]])
  t.eq(status, 3, "os.exit")
  text = slurp(path)
  os.remove(path)
  t.ok(text:find('"op":"token.new","status":"CAPFFI_EPERM"', 1, true), "written")
  local err
  status, _, err = run({ "--audit=/no/such/dir/audit.jsonl" }, "")
  t.eq(status, 1, "unwritable")
  t.ok(err:find("cannot open", 1, true), err)
end)

t.test("closing_the_state_frees_everything", function()
  -- Live objects of every kind when the script ends: the state's closing
  -- frees them and the context (AddressSanitizer builds check for leaks
  -- and bad frees).
  local body = [[
    local capffi = require "capffi"
    tok = capffi.token{ label = "live" }
    lib = tok:dlopen(os.getenv("CAPFFI_FIXTURE"), {
      fx_add_i32 = "(i32, i32) -> i32" })
    add = lib.fx_add_i32
    closed = tok:dlopen(os.getenv("CAPFFI_FIXTURE"), { fx_nop = "() -> void" })
    closed:close()
    buf = capffi.buffer(64)
    freed = capffi.buffer(8)
    freed:free()
    amb = capffi.dlopen(os.getenv("CAPFFI_FIXTURE"), {})
    local scoped <close> = capffi.buffer(8)
    setmetatable({}, { __gc = function() add(1, 2) end })
    print(add(1, 2))
  ]]
  for _, ending in ipairs{ "", "os.exit(0)", "os.exit(0, false)",
                           "error('x')" } do
    local status, out, err = run({ "--allow-ffi" }, body .. ending)
    t.eq(status, ending:find("error") and 1 or 0, "status for " .. ending)
    t.eq(out, "3\n", "output")
    t.ok(not err:find("Sanitizer", 1, true), err)
    if ending == "" then t.eq(err, "", "nothing on stderr") end
  end
end)

t.test("processes_need_allow_run", function()
  -- H6: without --allow-run, os.execute and io.popen raise, naming the
  -- flag; os.execute() says no shell is available.
  local probe = [[
    print(os.execute())
    local ok, e = pcall(os.execute, "echo ran >&2")
    print(ok, e)
    ok, e = pcall(io.popen, "echo ran >&2")
    print(ok, e)
  ]]
  local status, out, err = run({ "--allow-ffi" }, probe)
  t.eq(status, 0, "status")
  t.eq(err, "", "no process ran")
  local want = "false\n"
    .. "false\tos.execute: starting a process needs the run permission "
    .. "(capffi-lua --allow-run)\n"
    .. "false\tio.popen: starting a process needs the run permission "
    .. "(capffi-lua --allow-run)\n"
  t.ok(out:gsub("\t[^\t\n]-:%d+: ", "\t") == want, out)
  status, out = run({ "--allow-run" }, [[
    print(os.execute())
    print(os.execute("exit 3"))
    local p = io.popen("echo ran")
    print(p:read("l"), p:close())
  ]])
  t.eq(status, 0, "status with --allow-run")
  t.eq(out, "true\nnil\texit\t3\nran\ttrue\texit\t0\n", "processes ran")
end)

t.test("memory_files_by_links_devices_and_descriptors", function()
  -- H5, the spellings a script cannot make itself: a symlink to
  -- /proc/self/mem, a link to /proc, a device node of /dev/mem made
  -- elsewhere, an inherited descriptor reopened through /proc/self/fd.
  local dir = os.tmpname()
  os.remove(dir)
  t.eq(os.execute("mkdir " .. q(dir)), true, "mkdir")
  t.eq(os.execute("ln -s /proc/self/mem " .. q(dir .. "/link")
    .. " && ln -s /proc " .. q(dir .. "/p")), true, "links")
  local nodes = os.execute("(mknod " .. q(dir .. "/mem") .. " c 1 1 && mknod "
    .. q(dir .. "/port") .. " c 1 4 && mknod " .. q(dir .. "/kmem")
    .. " c 1 2 && mknod " .. q(dir .. "/zero") .. " c 1 5) 2>/dev/null")
  local status, out, err = run({}, [[
    local dir, nodes = ...
    local function try(path, mode)
      local f, msg, code = io.open(path, mode or "r+b")
      if f then f:close() return "opened" end
      return (msg:match("refused: it is the ([%w ']-) %(") or msg) .. " " .. code
    end
    print(try(dir .. "/link"))
    print(try(dir .. "/p/self/mem"))
    print(try(dir .. "/p/thread-self/../../mem", "rb"))
    print(try("/proc/self/fd/3"))
    print(select(2, loadfile(dir .. "/link")):match("refused") ~= nil)
    if nodes == "true" then
      print(try(dir .. "/mem", "rb"), try(dir .. "/kmem"), try(dir .. "/port"))
      print(try(dir .. "/zero", "rb"))
    end
  ]], { dir, tostring(nodes) }, nil, " 3</proc/self/mem")
  os.execute("rm -rf " .. q(dir))
  t.eq(status, 0, "status (" .. err .. ")")
  local proc = "memory of a process or of the kernel 13\n"
  local want = proc .. proc .. proc .. proc .. "true\n"
  if nodes then
    local dev = "machine's memory or ports 13"
    want = want .. dev .. "\t" .. dev .. "\t" .. dev .. "\nopened\n"
  else
    print("# mknod is not permitted here: device nodes not tried")
  end
  t.eq(out, want, "refused")
end)

t.done()
