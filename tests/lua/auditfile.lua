-- auditfile.lua: a script cannot erase, rewrite or forge the runner's
-- --audit file through the standard library (THREATS.md A1), and the
-- runner says so at the end when the file's name no longer leads to the
-- events. Each case starts capffi-lua (CAPFFI_LUA) with --audit on a
-- script that makes an audited denial labelled "evil", attacks the file,
-- then makes one labelled "after": the file at the path given must still
-- hold both, as the runner wrote them. Run with --allow-run.
local t = require "harness"

local RUNNER = assert(os.getenv("CAPFFI_LUA"), "CAPFFI_LUA unset")

local q = t.shq

local slurp = t.slurp

-- What every child runs first: deny(label) makes an audited refusal (a
-- token for a library outside --allow-ffi=libz.so.1) carrying label.
local PRELUDE = [[
local capffi = require "capffi"
local path, link = ...
local function deny(label)
  pcall(capffi.token, { label = label,
                        paths = { os.getenv("CAPFFI_FIXTURE") } })
end
local FORGED = '{"seq":1,"op":"token.new","label":"forged","count":1}\n'
deny("evil")
]]

-- Run the runner with --audit=path on PRELUDE .. code, arguments path and
-- link; returns the exit status, stdout and stderr.
local function run(path, code, link)
  local script, out, err = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(PRELUDE, code, '\ndeny("after")\n')
  f:close()
  local ok, how, status = os.execute(table.concat({
    q(RUNNER), "--allow-ffi=libz.so.1", q("--audit=" .. path), q(script),
    q(path), q(link or "") }, " ")
    .. " </dev/null >" .. q(out) .. " 2>" .. q(err))
  local o, e = slurp(out) or "", slurp(err) or ""
  os.remove(script)
  os.remove(out)
  os.remove(err)
  t.eq(how, "exit", "the runner exited (" .. tostring(status) .. ")")
  return status, o, e
end

-- The trail at path, as the runner wrote it: consecutive seq from 1, the
-- "evil" and "after" denials, nothing forged.
local function check_trail(path)
  local text = slurp(path)
  t.ok(text, "the file is at " .. path)
  local seq, labels = 0, {}
  for line in text:gmatch("([^\n]*)\n") do
    local s = tonumber(line:match('^{"seq":(%d+),'))
    t.eq(s, seq + 1, "consecutive seq in " .. line)
    seq = s
    t.ok(line:find('"count":%d+}$'), "a whole event: " .. line)
    local label = line:match('"label":"([^"]*)"')
    if label and line:find('"op":"token.new","status":"CAPFFI_EPERM"', 1,
                           true) then
      labels[label] = true
    end
  end
  t.ok(text:sub(-1) == "\n", "ends with a whole line")
  t.ok(labels.evil, "the denial before the attack is in the file")
  t.ok(labels.after, "the denial after the attack is in the file")
  t.ok(not text:find("forged", 1, true), "nothing forged")
end

-- A refusal as io.open and os.remove give it: nil, "NAME: refused: ...",
-- EACCES (13), printed by the child as "refused 13".
local REFUSED = [[
local function said(ok, msg, code)
  if ok then return "done" end
  return (msg:find("refused: it is the --audit file", 1, true)
          and "refused " or msg .. " ") .. tostring(code)
end
]]

t.test("audit_file_survives_rewrite_and_rename", function()
  local path = os.tmpname()
  local status, out, err = run(path, REFUSED .. [[
local kept = {}
for l in io.lines(path) do
  if not l:find('"evil"', 1, true) then kept[#kept + 1] = l end
end
local f = io.open(path .. ".new", "w")
f:write(table.concat(kept, "\n"), "\n", FORGED)
f:close()
print(said(os.rename(path .. ".new", path)))
-- and the other way: the trail moved aside, a forgery in its place
print(said(os.rename(path, path .. ".old")))
]])
  os.remove(path .. ".new")
  os.remove(path .. ".old")
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  t.eq(out, "refused 13\nrefused 13\n", "both renames refused")
  os.remove(path)
end)

t.test("audit_file_survives_overwrite", function()
  local path = os.tmpname()
  local status, out, err = run(path, REFUSED .. [[
local f, msg, code = io.open(path, "r+")
if f then
  f:write(FORGED .. (" "):rep(4096) .. "\n")
  f:close()
end
print(said(f, msg, code))
f, msg, code = io.open(path, "a")
if f then
  f:write(FORGED)
  f:close()
end
print(said(f, msg, code))
]])
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  t.eq(out, "refused 13\nrefused 13\n", "r+ and a refused")
  os.remove(path)
end)

t.test("audit_file_survives_truncation", function()
  -- By its name, through io.output, and through a hard link: the file is
  -- known by its identity.
  local path, link = os.tmpname(), os.tmpname()
  os.remove(link)
  local status, out, err = run(path, REFUSED .. [[
local f, msg, code = io.open(path, "w")
if f then f:close() end
print(said(f, msg, code))
print(pcall(io.output, path))
]])
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  t.ok(out:match("^refused 13\nfalse\t[^\n]*refused: it is the %-%-audit "
       .. "file[^\n]*\n$"), out)
  -- The same through a hard link made before the runner starts.
  t.eq(os.execute("ln " .. q(path) .. " " .. q(link)), true, "ln")
  status, out, err = run(path, REFUSED .. [[
local f, msg, code = io.open(link, "w")
if f then f:close() end
print(said(f, msg, code))
]], link)
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  t.eq(out, "refused 13\n", "the link refused")
  os.remove(path)
  os.remove(link)
end)

t.test("audit_file_survives_remove", function()
  local path, link = os.tmpname(), os.tmpname()
  os.remove(link)
  t.eq(os.execute("ln " .. q(path) .. " " .. q(link)), true, "ln")
  local status, out, err = run(path, REFUSED .. [[
print(said(os.remove(path)))
print(said(os.remove(link)))
local f = io.open(path .. ".other", "w")
f:write(FORGED)
f:close()
print(said(os.rename(path .. ".other", link)))
os.remove(path .. ".other")
]], link)
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  check_trail(link)
  t.eq(out, "refused 13\nrefused 13\nrefused 13\n",
       "removing it, a hard link, renaming over the link: refused")
  os.remove(path)
  os.remove(link)
end)

t.test("audit_file_survives_its_own_descriptor", function()
  -- The runner's descriptor, reopened through /proc/self/fd: found by
  -- reading (which is allowed), then opened for writing.
  local path = os.tmpname()
  local status, out, err = run(path, REFUSED .. [[
local mine = io.open(path, "rb"):read("a")
local n
for i = 3, 63 do
  local f = io.open("/proc/self/fd/" .. i, "rb")
  if f then
    if f:read("a") == mine then n = i end
    f:close()
  end
  if n then break end
end
print(n ~= nil)
local f, msg, code = io.open("/proc/self/fd/" .. n, "r+b")
if f then
  f:write(FORGED .. (" "):rep(4096) .. "\n")
  f:close()
end
print(said(f, msg, code))
]])
  t.eq(status, 0, "status (" .. err .. ")")
  check_trail(path)
  t.eq(out, "true\nrefused 13\n", "found and refused")
  os.remove(path)
end)

t.test("audit_file_moved_away_fails_the_run", function()
  -- What the runner cannot refuse (a directory on the path renamed, a
  -- symlink removed) it reports at the end: stderr and status 1, however
  -- the script ends. The events are still all in the file.
  local dir = os.tmpname()
  os.remove(dir)
  t.eq(os.execute("mkdir " .. q(dir)), true, "mkdir")
  local path = dir .. "/audit.jsonl"
  for _, ending in ipairs{ "", "os.exit(0)", "os.exit(true, false)" } do
    local status, _, err = run(path, [[
deny("after")
assert(os.rename(path:match("^(.*)/"), path:match("^(.*)/") .. ".moved"))
]] .. ending)
    t.eq(status, 1, "status for '" .. ending .. "'")
    t.ok(err:find("--audit: '" .. path .. "' no longer names the file", 1,
                  true), err)
    check_trail(dir .. ".moved/audit.jsonl")
    t.eq(os.execute("rm -rf " .. q(dir) .. " && mv " .. q(dir .. ".moved")
                    .. " " .. q(dir)), true, "mv")
  end
  -- A symlink named on the command line, removed by the script.
  local real = dir .. "/real.jsonl"
  t.eq(os.execute("ln -sf real.jsonl " .. q(path)), true, "ln -s")
  local status, _, err = run(path, [[assert(os.remove(path))]])
  t.eq(status, 1, "status for the symlink")
  t.ok(err:find("no longer names the file", 1, true), err)
  check_trail(real)
  -- Left alone, the same run succeeds quietly.
  status, _, err = run(real, "")
  t.eq(status, 0, "status when untouched")
  t.eq(err, "", "stderr when untouched")
  os.execute("rm -rf " .. q(dir))
end)

t.done()
