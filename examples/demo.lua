-- demo.lua: the revocable runtime. Run it with
--
--   capffi-lua --allow-ffi --audit=audit.jsonl examples/demo.lua
--
-- A trusted module takes a token scoped to libz and libsqlite3, in safe
-- mode (no raw pointers: sqlite and zlib through classes); the
-- application then revokes FFI; an untrusted plugin, holding only a
-- safe-mode token that may make callbacks, tries to reach libc's
-- system(), to take the address of memory and to take a raw pointer from
-- native code, and is refused at every turn; the trusted module keeps
-- working through its token (its SQL rows arrive through an sqlite3_exec
-- callback as counted arrays of strings); the audit trail shows every
-- decision.
local capffi = require "capffi"

local here = (arg and arg[0] or ""):match("^(.*)/") or "."
package.path = here .. "/demo/?.lua;" .. package.path

local function say(fmt, ...)
  print(fmt:format(...))
end

local surprises = 0 -- anything that should have been refused and was not
local safe_refusals = 0 -- the plugin's raw pointer, refused by safe mode

local function step(n, text)
  say("\n%d. %s", n, text)
end

say("capffi %s revocable runtime demo (%s)", capffi.version, _VERSION)

step(1, "The application starts with FFI allowed (--allow-ffi).")
say("   permission for FFI: %s", capffi.permissions.query())
if capffi.permissions.query() ~= "granted" then
  say("   run it as: capffi-lua --allow-ffi %s", arg and arg[0] or "demo.lua")
  os.exit(1)
end

step(2, "The trusted module 'store' takes its token as it loads.")
local store = require "store"
local info = store.describe()
say("   token %s (%s): rights {%s}, %d library files", info.label, info.id,
    table.concat(info.rights, ", "), info.n_paths)
-- The plugin will get a token too, minted while FFI is allowed: it may
-- make callbacks, and nothing else. Without the pointer, read and write
-- rights it is in safe mode: a raw pointer anywhere is refused.
local plugin_token = capffi.token{ label = "plugin", rights = { "callback" } }
say("   token %s for the plugin: rights {%s}", plugin_token:info().id,
    table.concat(plugin_token:info().rights, ", "))

step(3, "The application revokes FFI: nothing else may start using it.")
say("   capffi.permissions.revoke() -> %s", capffi.permissions.revoke())

step(4, "An untrusted plugin runs, with a read-only view of capffi and its"
     .. " token.")
local function readonly(t)
  local view = {}
  for k, v in pairs(t) do
    view[k] = type(v) == "table" and readonly(v) or v
  end
  return setmetatable({}, {
    __index = view,
    __newindex = function(_, k)
      error(("capffi.%s is read-only here"):format(k), 2)
    end,
    __metatable = false,
  })
end
local function attempt(what, fn)
  local ok, result = pcall(fn)
  if ok and result ~= nil and result ~= "granted" then
    say("   %-52s refused: %s", what, result)
  elseif ok then
    say("   %-52s ALLOWED", what)
    surprises = surprises + 1
  elseif type(result) == "table" and result.code then
    local safe = result.message:find("safe mode", 1, true) ~= nil
    if safe then safe_refusals = safe_refusals + 1 end
    say("   %-52s refused: %s%s", what, result.code,
        safe and " (safe mode: declare a class)" or "")
  else
    say("   %-52s refused: %s", what, tostring(result):gsub("^.-:%d+: ", ""))
  end
end
local plugin = assert(loadfile(here .. "/demo/plugin.lua", "t", {
  pcall = pcall, error = error, type = type, tostring = tostring,
}))
plugin(readonly(capffi), attempt, plugin_token)
if safe_refusals == 0 then
  say("   the raw pointer was not refused by safe mode")
  surprises = surprises + 1
end

step(5, "The trusted module keeps working through its token, in safe mode.")
local text = capffi.audit.jsonl()
local packed = store.compress(text)
local restored = store.decompress(packed, #text)
say("   libz: the audit trail so far, %d bytes of JSON Lines -> %d bytes",
    #text, #packed)
say("   libz: restored %d bytes, %s", #restored,
    restored == text and "identical" or "DIFFERENT")
if restored ~= text then surprises = surprises + 1 end

local rows = {}
for _, ev in ipairs(capffi.audit.events()) do
  rows[#rows + 1] = { ev.op, ev.status, ev.label }
end
local version, result = store.query(
  "CREATE TABLE audit (op TEXT, status TEXT, label TEXT)",
  "INSERT INTO audit VALUES (?, ?, ?)", rows,
  [[SELECT label, op, status, COUNT(*) FROM audit
    WHERE status <> 'CAPFFI_OK' GROUP BY label, op, status
    ORDER BY label, op]])
say("   libsqlite3 %s: the audit trail in a table; its refusals, row by row"
    .. "\n   through an sqlite3_exec callback:", version)
say("     %-10s %-15s %-14s %s", "label", "op", "status", "count")
for _, r in ipairs(result) do
  say("     %-10s %-15s %-14s %s", r[1] == "" and "-" or r[1], r[2], r[3], r[4])
end

step(6, "The token is scoped: the trusted module cannot reach libc either.")
local ok, e = store.try_libc()
say("   store's token, libc.so.6: %s", ok and "ALLOWED" or e.code)
if ok then surprises = surprises + 1 end

step(7, "The audit trail: every decision, in order.")
local function base(path)
  return path:match("[^/]*$")
end
local function what(ev)
  if ev.op == "view.new" or (ev.op:find("^cb%.") and ev.status == "CAPFFI_OK")
  then
    return ev.detail -- the access, the signature: addresses say little
  end
  if ev.op:find("^perm%.") then
    return (ev.target ~= "" and base(ev.target) .. ": " or "") .. ev.detail
  end
  return ev.target ~= "" and base(ev.target) or ev.detail
end
-- Runs of the same operation, outcome and holder share a row (binding
-- symbols, viewing the strings sqlite hands the callback).
local events, rows = capffi.audit.events(), {}
local grouped = { ["lib.bind"] = true, ["view.new"] = true }
for _, ev in ipairs(events) do
  local last = rows[#rows]
  if last and last.op == ev.op and last.status == ev.status
      and last.label == ev.label and grouped[ev.op] then
    last.last = ev.seq
    last.what[#last.what + 1] = what(ev)
  else
    rows[#rows + 1] = { first = ev.seq, last = ev.seq, op = ev.op,
                        status = ev.status, reason = ev.reason,
                        label = ev.label, what = { what(ev) } }
  end
end
say("   %-7s %-15s %-8s %-16s %-8s %s", "seq", "op", "status", "reason",
    "label", "target or detail")
for _, r in ipairs(rows) do
  local seq = r.first == r.last and tostring(r.first)
              or ("%d-%d"):format(r.first, r.last)
  local text = table.concat(r.what, ", ")
  if r.op == "view.new" then -- "6 read, 24 unbounded read"
    local n, order = {}, {}
    for _, d in ipairs(r.what) do
      if not n[d] then order[#order + 1] = d end
      n[d] = (n[d] or 0) + 1
    end
    for i, d in ipairs(order) do order[i] = ("%d %s"):format(n[d], d) end
    text = table.concat(order, ", ")
  end
  if #text > 46 then text = text:sub(1, 43) .. "..." end
  say("   %-7s %-15s %-8s %-16s %-8s %s", seq, r.op,
      r.status:gsub("^CAPFFI_", ""), r.reason,
      r.label == "" and "-" or r.label, text)
end
local refused = 0
for _, ev in ipairs(events) do
  if ev.status ~= "CAPFFI_OK" then refused = refused + 1 end
end
say("   %d events, %d refused. 'ambient' marks capffi.dlopen without a token,"
    .. "\n   which works only while the permission does. With --audit=FILE"
    .. " the runner\n   writes every event as JSON Lines when the script ends.",
    #events, refused)
os.exit(surprises == 0 and 0 or 1)
