-- store.lua: the trusted module of the demo. It takes its token once, when
-- it is loaded, scoped to the two libraries it needs and to what it does
-- with them (open them, hand sqlite a callback, read the strings sqlite
-- gives that callback), and keeps it in a local that no other code can
-- reach. Revoking the application's FFI permission later does not stop
-- it; nothing else can use the token.
local capffi = require "capffi"

local token = capffi.token{
  label = "store",
  rights = { "dlopen", "callback", "read", "pointer" },
  paths = { "libz.so.1", "libsqlite3.so.0" },
}

local z, sq -- opened on first use, possibly after FFI was revoked

local function zlib()
  z = z or token:dlopen("libz.so.1", {
    compressBound = "(u64) -> u64",
    compress2 = "(buffer, buffer, buffer, u64, i32) -> i32",
    uncompress = "(buffer, buffer, buffer, u64) -> i32",
  })
  return z
end

local function sqlite()
  sq = sq or token:dlopen("libsqlite3.so.0", {
    sqlite3_libversion = "() -> cstring",
    sqlite3_open = "(cstring, buffer) -> i32",
    sqlite3_close = "(pointer) -> i32",
    sqlite3_errmsg = "(pointer) -> cstring",
    sqlite3_exec = "(pointer, cstring, function, pointer, pointer) -> i32",
    sqlite3_prepare_v2 = "(pointer, cstring, i32, buffer, pointer) -> i32",
    -- the last parameter is the destructor: SQLITE_TRANSIENT, (void *)-1,
    -- passed as the integer -1 (sqlite copies the text)
    sqlite3_bind_text = "(pointer, i32, cstring, i32, isize) -> i32",
    sqlite3_step = "(pointer) -> i32",
    sqlite3_reset = "(pointer) -> i32",
    sqlite3_finalize = "(pointer) -> i32",
  })
  return sq
end

local M = {}

-- What the module's token may do (a description; never the token).
function M.describe()
  return token:info()
end

-- An out-parameter: a buffer for native code to write one value of the
-- given type into, and a view of it (views of the module's own buffers
-- need no token). Returns the buffer and a function that reads the value.
local function out_param(type, initial)
  local buf = capffi.buffer(8)
  -- Reading an address back out of memory makes a pointer: only a view
  -- made through a token with the pointer right may.
  local view = type == "pointer" and token:view(buf) or buf:view()
  if initial then view:set(type, 0, initial) end
  return buf, function() return view:get(type, 0) end
end

-- zlib's uLongf * in/out length: the room given, then the length written.
local function deflate(fn, out, src, src_len, ...)
  local len, written = out_param("u64", #out)
  local rc = fn(out, len, src, src_len, ...)
  assert(rc == 0, "zlib failed: " .. rc)
  return out:view("r"):copy(0, written())
end

-- Compress text with zlib; returns the compressed bytes.
function M.compress(text)
  local lib = zlib()
  local src = capffi.buffer(text)
  return deflate(lib.compress2, capffi.buffer(lib.compressBound(#src)), src,
                 #src, 9)
end

-- Restore what compress made, given the original length.
function M.decompress(packed, len)
  return deflate(zlib().uncompress, capffi.buffer(len),
                 capffi.buffer(packed), #packed)
end

-- The n C strings of a char *[n] that native code handed over ("NULL" for
-- a NULL entry): a view of the array, and an unbounded view of each string
-- to find its end (the read and pointer rights).
local function cstrings(array, n)
  local list, v = {}, token:view(array, n * 8, "r")
  for i = 0, n - 1 do
    local p = v:get("pointer", i * 8)
    if p then
      local sv = token:view(p, "unbounded", "r")
      list[i + 1] = sv:cstring()
      sv:free()
    else
      list[i + 1] = "NULL"
    end
  end
  v:free()
  return list
end

-- Load rows into an in-memory table and run one query over them; the rows
-- arrive through sqlite3_exec's callback. Returns sqlite's version and the
-- result rows.
function M.query(create, insert, rows, select)
  local lib = sqlite()
  -- Handles come back through out-parameters (sqlite3 **, sqlite3_stmt
  -- **): read as pointers through a view of the buffer.
  local out, handle = out_param("pointer")
  assert(lib.sqlite3_open(":memory:", out) == 0, "sqlite3_open failed")
  local db = handle()
  local function check(rc, what)
    if rc ~= 0 and rc ~= 100 and rc ~= 101 then
      error(what .. ": " .. lib.sqlite3_errmsg(db), 2)
    end
    return rc
  end
  check(lib.sqlite3_exec(db, create, nil, nil, nil), "create")
  -- Inserts bind their values (never spliced into SQL text).
  check(lib.sqlite3_prepare_v2(db, insert, -1, out, nil), "prepare")
  local stmt = handle()
  for _, row in ipairs(rows) do
    for i, v in ipairs(row) do
      check(lib.sqlite3_bind_text(stmt, i, tostring(v), -1, -1), "bind")
    end
    check(lib.sqlite3_step(stmt), "insert")
    check(lib.sqlite3_reset(stmt), "reset")
  end
  lib.sqlite3_finalize(stmt)
  -- int (*)(void *arg, int ncols, char **values, char **names): 0 goes on;
  -- the default result 1, which native code gets if the handler fails,
  -- makes sqlite3_exec stop.
  local result = {}
  local row <close> = token:callback("(pointer, i32, pointer, pointer) -> i32",
    function(_, ncols, values)
      result[#result + 1] = cstrings(values, ncols)
      return 0
    end, { result = 1 })
  check(lib.sqlite3_exec(db, select, row, nil, nil), "select")
  lib.sqlite3_close(db)
  return lib.sqlite3_libversion(), result
end

-- The token is scoped: even this module cannot load libc with it.
function M.try_libc()
  return pcall(token.dlopen, token, "libc.so.6", { system = "(cstring) -> i32" })
end

return M
