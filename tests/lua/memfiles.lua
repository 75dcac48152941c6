-- memfiles.lua: with no flag at all, no function of the standard
-- libraries opens the memory of a process (H5), under any spelling; the
-- refusal is judged on the opened file. Files in general still open.
local t = require "harness"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local PID = slurp("/proc/self/stat"):match("^(%d+)")

-- path must be refused by io.open in every mode, as a failed open is.
local function refused(path, why, modes)
  for _, mode in ipairs(modes or { "rb", "r+b", "a", "a+" }) do
    local f, msg, code = io.open(path, mode)
    if f then f:close() end
    t.eq(f, nil, path .. " opened with " .. mode)
    t.ok(msg:find(path, 1, true) == 1, "the message names the file: " .. msg)
    t.ok(msg:find("refused: " .. why, 1, true), "the reason: " .. msg)
    t.eq(code, 13, "an errno (EACCES)")
  end
end

t.test("process_memory_under_every_spelling", function()
  for _, path in ipairs{
    "/proc/self/mem",
    "/proc/thread-self/mem",
    "/proc/" .. PID .. "/mem",
    "/proc/" .. PID .. "/task/" .. PID .. "/mem",
    "//proc/./self/../self//mem",
    "/proc/self/root/proc/self/mem",
    "/proc/self/task/" .. PID .. "/root/proc/thread-self/mem",
  } do
    refused(path, "it is the memory of a process")
  end
end)

t.test("every_function_that_opens_a_file", function()
  local why = "it is the memory of a process"
  local ok, e = pcall(io.lines, "/proc/self/mem")
  t.eq(ok, false, "io.lines")
  t.ok(tostring(e):find(why, 1, true), tostring(e))
  local before = io.input()
  ok, e = pcall(io.input, "/proc/self/mem")
  t.eq(ok, false, "io.input")
  t.ok(tostring(e):find(why, 1, true), tostring(e))
  t.eq(io.input(), before, "the default input is unchanged")
  before = io.output()
  ok, e = pcall(io.output, "/proc/self/mem")
  t.eq(ok, false, "io.output")
  t.ok(tostring(e):find(why, 1, true), tostring(e))
  t.eq(io.output(), before, "the default output is unchanged")
  local f, msg = loadfile("/proc/self/mem")
  t.eq(f, nil, "loadfile")
  t.ok(msg:find(why, 1, true), msg)
  ok, e = pcall(dofile, "/proc/thread-self/mem")
  t.eq(ok, false, "dofile")
  t.ok(tostring(e):find(why, 1, true), tostring(e))
  package.path = "/proc/self/?"
  ok, e = pcall(require, "mem")
  t.eq(ok, false, "require")
  t.ok(tostring(e):find(why, 1, true), tostring(e))
end)

t.test("files_mapped_into_the_process", function()
  -- /proc/self/map_files/* reaches the files behind the process's
  -- mappings: the program and its libraries, refused by identity.
  -- (Opened for writing, the running program is refused by the kernel
  -- first: ETXTBSY.)
  refused("/proc/self/exe", "the file is mapped into this process", { "rb" })
  local range = slurp("/proc/self/maps"):match("\n(%x+%-%x+) r%-xp %x+ %x+:%x+ [1-9]%d* +/")
  t.ok(range, "a mapping of a library's code")
  local path = "/proc/self/map_files/" .. range
  local f, msg, code = io.open(path, "rb")
  if f then f:close() end
  t.eq(f, nil, path)
  if code == 1 then
    -- Following map_files links needs CAP_SYS_ADMIN (or
    -- CAP_CHECKPOINT_RESTORE): the kernel refused first.
    print("# " .. path .. ": the kernel refuses this process: " .. msg)
  elseif code == 2 then
    -- Under valgrind the maps the program reads are valgrind's account
    -- of them, not the kernel's: there is no such entry to open.
    print("# " .. path .. ": no such mapping for the kernel: " .. msg)
  else
    t.ok(msg:find("refused: the file is mapped", 1, true), msg)
  end
end)

t.test("files_without_a_name", function()
  -- A deleted file is reachable only through /proc/self/fd (as memory
  -- files are): refused by identity.
  local path = os.tmpname()
  local keep = assert(io.open(path, "w+"))
  keep:write("secret contents")
  keep:flush()
  os.remove(path)
  local seen = 0
  for fd = 3, 64 do
    local f, msg = io.open("/proc/self/fd/" .. fd, "rb")
    if f then
      -- Only seekable files are read: a pipe would wait for its writer.
      local s = f:seek("set") and f:read(15)
      f:close()
      t.ok(s ~= "secret contents", "the deleted file opened as fd " .. fd)
    elseif msg:find("no name left", 1, true) then
      seen = seen + 1
    end
  end
  keep:close()
  t.ok(seen >= 1, "the deleted file was refused")
end)

t.test("other_files_open_as_before", function()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("one\ntwo\n")
  f:close()
  t.eq(slurp(path), "one\ntwo\n", "written and read")
  f = assert(io.open(path, "a"))
  f:write("three\n")
  f:close()
  local lines = {}
  for l in io.lines(path) do lines[#lines + 1] = l end
  t.eq(table.concat(lines, ","), "one,two,three", "appended, io.lines")
  f = assert(io.open(path, "w"))
  f:close()
  t.eq(slurp(path), "", "w truncates")
  f = assert(io.open(path, "w"))
  f:write("#!/usr/bin/env capffi-lua\nreturn select('#', ...), ...\n")
  f:close()
  local n, a = loadfile(path)(7)
  t.eq(n, 1, "loadfile skips the first # line")
  t.eq(a, 7, "and passes arguments")
  t.eq(dofile(path), 0, "dofile")
  f = assert(io.open(path, "w"))
  f:write("return x\n")
  f:close()
  t.eq(loadfile(path, "t", { x = 4 })(), 4, "loadfile with an environment")
  io.output(path)
  io.write("written through io.output\n")
  io.output():close()
  io.output(io.stdout)
  io.input(path)
  t.eq(io.read("l"), "written through io.output", "io.input")
  io.input():close()
  io.input(io.stdin)
  os.remove(path)
  t.ok(#slurp("/proc/self/maps") > 0, "/proc/self/maps")
  t.ok(slurp("/proc/self/status"):find("Pid:", 1, true), "/proc/self/status")
  f = assert(io.open("/dev/null", "w"))
  f:write("x")
  f:close()
  t.eq(#assert(io.open("/dev/zero", "rb")):read(4), 4, "/dev/zero")
  local none, msg, code = io.open("/no/such/file")
  t.eq(none, nil, "a missing file")
  t.eq(msg, "/no/such/file: No such file or directory", "message")
  t.eq(code, 2, "ENOENT")
  t.eq(pcall(io.open, "/dev/null", "rw"), false, "an invalid mode")
end)

t.done()
