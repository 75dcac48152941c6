-- audit.lua: the audit trail as a script and the runner see it (run with
-- --allow-ffi). A1: a flood keeps the decisions that matter and --audit's
-- file has every event even when the process is killed; A2: calls refused
-- after a revocation are in the trail, coalesced with a count; A3: targets
-- are escaped.
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local RUNNER = assert(os.getenv("CAPFFI_LUA"), "CAPFFI_LUA unset")
local a = capffi.audit

-- The recorded events of op and status, and the sum of their counts.
local function events_of(op, status)
  local n, sum = 0, 0
  for _, ev in ipairs(a.events()) do
    if ev.op == op and ev.status == status then
      n, sum = n + 1, sum + ev.count
    end
  end
  return n, sum
end

t.test("audit_refused_calls_are_counted", function()
  local tok = capffi.token{ label = "refused" }
  local lib = tok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
  t.eq(lib.fx_add_i32(2, 3), 5, "a live call")
  t.eq(a.count("fn.call"), 0, "live calls are not audited")
  tok:revoke()
  for _ = 1, 1000 do
    t.raises("CAPFFI_EREVOKED", lib.fx_add_i32, 1, 1)
  end
  -- one event at once, the other 999 counted into a second one that the
  -- readers deliver
  local n, sum = events_of("fn.call", "CAPFFI_EREVOKED")
  t.eq(n, 2, "events")
  t.eq(sum, 1000, "refusals counted")
  t.eq(a.count("fn.call", "CAPFFI_EREVOKED"), 2, "count agrees")
  local ev = a.events()[#a.events()]
  t.eq(ev.reason, "revoked", "reason")
  t.eq(ev.target, "fx_add_i32", "the function's symbol")
  t.ok(a.jsonl():find('"op":"fn.call","status":"CAPFFI_EREVOKED"', 1, true),
       "in the JSON Lines")
end)

t.test("audit_targets_are_escaped", function()
  local tok = capffi.token{ label = "escape" }
  local sym = "fx_\27[2J\7\\\194\155\226\128\174\255"
  t.raises("CAPFFI_ENOTFOUND", tok.dlopen, tok, FIXTURE,
           { [sym] = "() -> void" })
  local found
  for _, ev in ipairs(a.events()) do
    if ev.op == "lib.bind" and ev.status == "CAPFFI_ENOTFOUND" then
      found = ev
    end
  end
  t.ok(found, "the refused bind is recorded")
  t.eq(found.target, "fx_\\x1b[2J\\x07\\\\\\xc2\\x9b\\xe2\\x80\\xae\\xff",
       "target")
  for _, s in ipairs({ found.target, found.detail }) do
    t.ok(not s:find("[%c\127]"), "no control byte in " .. s)
    t.ok(not s:find("\194[\128-\159]"), "no C1 control in " .. s)
  end
  -- the JSON text is the stored text, JSON-encoded once
  t.ok(a.jsonl():find('"target":"fx_\\\\x1b[2J\\\\x07', 1, true), "JSON")
end)

t.test("audit_flood_keeps_decisions", function()
  local before = a.dropped()
  local tok = capffi.token{ label = "flood" }
  local lib = tok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
  local b = capffi.buffer(16)
  local p = tok:pointer_of(b)
  -- a comparator's worth of views: two per comparison
  for _ = 1, 6000 do
    tok:view(p, 8):free()
    tok:view(p, 16):free()
  end
  b:unpin()
  local kept = {}
  for _, ev in ipairs(a.events()) do
    if ev.label == "flood" then kept[ev.op] = true end
  end
  t.ok(kept["token.new"], "token.new kept")
  t.ok(kept["lib.open"], "lib.open kept")
  t.ok(kept["lib.bind"], "lib.bind kept")
  -- the earlier test's denials are kept too
  t.eq(a.count("fn.call", "CAPFFI_EREVOKED"), 2, "denials kept")
  t.eq(a.count("lib.bind", "CAPFFI_ENOTFOUND"), 1, "the refused bind kept")
  local total, by_op = a.dropped()
  t.ok(total > before, "the recorder was full")
  t.ok((by_op["view.new"] or 0) > 0, "views were dropped")
  t.eq(a.dropped("view.new"), by_op["view.new"], "dropped(op)")
  t.eq(by_op["token.new"], nil, "no token.new dropped")
  t.eq(by_op["lib.open"], nil, "no lib.open dropped")
  -- the JSON Lines end by saying what was dropped
  local text = a.jsonl()
  local last = text:match("([^\n]*)\n$")
  t.ok(last:find('^{"summary":"dropped","dropped":' .. total .. ',"by_op":{'),
       last)
  t.ok(last:find('"view.new":' .. by_op["view.new"], 1, true), last)
  lib:close()
  t.raises("CAPFFI_EINVAL", a.dropped, "no.such.op")
end)

local slurp = t.slurp

t.test("audit_file_is_streamed", function()
  -- A child floods the trail, then kills itself with SIGKILL: nothing runs
  -- after, yet its --audit file must hold every event, as JSON Lines.
  local script, file = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write([[
local capffi = require "capffi"
local tok = capffi.token{ label = "child" }
local libc = tok:dlopen("libc.so.6",
  { getpid = "() -> i32", kill = "(i32, i32) -> i32" })
for _ = 1, 10000 do capffi.permissions.query() end
libc.kill(libc.getpid(), 9)
print("still alive")
]])
  f:close()
  local q = function(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end
  local ok, how, code = os.execute(q(RUNNER) .. " --allow-ffi --audit="
    .. q(file) .. " " .. q(script) .. " >/dev/null 2>&1")
  os.remove(script)
  local text = slurp(file) or ""
  os.remove(file)
  t.ok(not ok, "the child was killed (" .. tostring(how) .. " "
       .. tostring(code) .. ")")
  local lines, queries, seq, ops = 0, 0, 0, {}
  for line in text:gmatch("([^\n]*)\n") do
    lines = lines + 1
    t.ok(line:find('^{"seq":%d+,') and line:find('"count":%d+}$'),
         "a JSON object: " .. line)
    local s = tonumber(line:match('^{"seq":(%d+),'))
    t.eq(s, seq + 1, "consecutive seq")
    seq = s
    local op = line:match('"op":"([^"]+)"')
    ops[op] = true
    if op == "perm.query" then queries = queries + 1 end
  end
  t.ok(text:sub(-1) == "\n", "ends with a whole line")
  t.ok(ops["token.new"] and ops["lib.open"] and ops["lib.bind"],
       "the decisions are in the file")
  t.eq(queries, 10000, "every query is in the file")
  t.ok(lines > 10000, "lines")
end)

t.done()
