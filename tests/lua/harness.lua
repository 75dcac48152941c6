-- harness.lua: a small TAP producer for the Lua tests.
--
--   local t = require "harness"
--   t.test("name", function() ... end)   -- one TAP line per case
--   t.eq(got, want, "what")              -- fails the case unless equal
--   t.raises("CAPFFI_EPERM", fn, ...)    -- fn must raise that capffi code
--   t.done()                             -- prints the plan, sets the status
local M = {}

local count, failed = 0, 0

function M.test(name, fn)
  count = count + 1
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    print(("ok %d - %s"):format(count, name))
  else
    failed = failed + 1
    print(("not ok %d - %s"):format(count, name))
    for line in tostring(err):gmatch("[^\n]+") do
      print("# " .. line)
    end
  end
end

local function show(v)
  if type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

function M.eq(got, want, what)
  if got ~= want then
    error(("%s: got %s, want %s"):format(what or "value", show(got),
          show(want)), 2)
  end
end

function M.ok(cond, what)
  if not cond then
    error((what or "condition") .. " is false", 2)
  end
end

-- fn(...) must fail with a capffi error object of the given code; returns it.
function M.raises(code, fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then
    error(("expected %s, but the call succeeded"):format(code), 2)
  end
  if type(e) ~= "table" or e.code ~= code then
    error(("expected %s, got %s"):format(code, tostring(e)), 2)
  end
  M.eq(tostring(e), e.code .. ": " .. e.message, "error text")
  return e
end

-- The message of a capffi error must contain text (a plain substring).
function M.says(e, text)
  if not e.message:find(text, 1, true) then
    error(("message %q lacks %q"):format(e.message, text), 2)
  end
end

-- How many operations the audit trail records with op and status (a code
-- name): each event counts as the refusals it stands for (its count), so
-- coalesced refusals are counted exactly.
function M.audited(op, status)
  local n = 0
  for _, ev in ipairs(require("capffi").audit.events()) do
    if ev.op == op and ev.status == status then n = n + ev.count end
  end
  return n
end

-- A mark of the audit trail that holds the collector (after a full
-- collection): what a test dropped is closed, and audited, before the
-- mark, so the events an expectation sees are the test's own.
-- expect_since lets the collector go again and asks capffi.audit.expect.
function M.mark()
  collectgarbage()
  collectgarbage("stop")
  return require("capffi").audit.mark()
end

function M.expect_since(m, patterns, options)
  collectgarbage("restart")
  return require("capffi").audit.expect(m, patterns, options)
end

-- A file's contents, or nil when it cannot be read.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- s quoted for the shell (a child runner's command line).
function M.shq(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

function M.done()
  print("1.." .. count)
  os.exit(failed == 0 and 0 or 1)
end

return M
