-- store.lua: the trusted module of the demo. It takes its token once, when
-- it is loaded, scoped to the two libraries it needs, and keeps it in a
-- local that no other code can reach. Revoking the application's FFI
-- permission later does not stop it; nothing else can use the token.
local capffi = require "capffi"

local token = capffi.token{
  label = "store",
  rights = { "dlopen" },
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
    sqlite3_close = "(usize) -> i32",
    sqlite3_errmsg = "(usize) -> cstring",
    sqlite3_exec = "(usize, cstring, pointer, pointer, pointer) -> i32",
    sqlite3_prepare_v2 = "(usize, cstring, i32, buffer, pointer) -> i32",
    -- the last parameter is the destructor: SQLITE_TRANSIENT, (void *)-1,
    -- passed as the integer -1 (sqlite copies the text)
    sqlite3_bind_text = "(usize, i32, cstring, i32, isize) -> i32",
    sqlite3_step = "(usize) -> i32",
    sqlite3_reset = "(usize) -> i32",
    sqlite3_column_count = "(usize) -> i32",
    sqlite3_column_text = "(usize, i32) -> cstring",
    sqlite3_finalize = "(usize) -> i32",
  })
  return sq
end

local M = {}

-- What the module's token may do (a description; never the token).
function M.describe()
  return token:info()
end

-- Compress text with zlib; returns the compressed bytes.
function M.compress(text)
  local lib = zlib()
  local src = capffi.buffer(text)
  local cap = lib.compressBound(#src)
  local out = capffi.buffer(cap)
  local out_len = capffi.buffer(string.pack("J", cap)) -- uLongf, in and out
  local rc = lib.compress2(out, out_len, src, #src, 9)
  assert(rc == 0, "compress2 failed: " .. rc)
  return out:tostring(1, (string.unpack("J", out_len:tostring())))
end

-- Restore what compress made, given the original length.
function M.decompress(packed, len)
  local lib = zlib()
  local out = capffi.buffer(len)
  local out_len = capffi.buffer(string.pack("J", len))
  local rc = lib.uncompress(out, out_len, capffi.buffer(packed), #packed)
  assert(rc == 0, "uncompress failed: " .. rc)
  return out:tostring(1, (string.unpack("J", out_len:tostring())))
end

-- Handles come back through out-parameters (sqlite3 **, sqlite3_stmt **):
-- read from the buffer as an integer and passed back as usize, which the
-- C calling convention passes exactly as it passes a pointer.
local function handle(out)
  return (string.unpack("J", out:tostring()))
end

-- Load rows into an in-memory table and run one query over them. Returns
-- sqlite's version, the column names and the result rows.
function M.query(create, insert, rows, select)
  local lib = sqlite()
  local out = capffi.buffer(8)
  assert(lib.sqlite3_open(":memory:", out) == 0, "sqlite3_open failed")
  local db = handle(out)
  local function check(rc, what)
    if rc ~= 0 and rc ~= 100 and rc ~= 101 then
      error(what .. ": " .. lib.sqlite3_errmsg(db), 2)
    end
    return rc
  end
  check(lib.sqlite3_exec(db, create, nil, nil, nil), "create")
  check(lib.sqlite3_prepare_v2(db, insert, -1, out, nil), "prepare")
  local stmt = handle(out)
  for _, row in ipairs(rows) do
    for i, v in ipairs(row) do
      check(lib.sqlite3_bind_text(stmt, i, tostring(v), -1, -1), "bind")
    end
    check(lib.sqlite3_step(stmt), "insert")
    check(lib.sqlite3_reset(stmt), "reset")
  end
  lib.sqlite3_finalize(stmt)
  check(lib.sqlite3_prepare_v2(db, select, -1, out, nil), "prepare")
  stmt = handle(out)
  local result = {}
  local ncol = lib.sqlite3_column_count(stmt)
  while check(lib.sqlite3_step(stmt), "select") == 100 do -- SQLITE_ROW
    local r = {}
    for i = 0, ncol - 1 do
      r[#r + 1] = lib.sqlite3_column_text(stmt, i) or "NULL"
    end
    result[#result + 1] = r
  end
  lib.sqlite3_finalize(stmt)
  lib.sqlite3_close(db)
  return lib.sqlite3_libversion(), result
end

-- The token is scoped: even this module cannot load libc with it.
function M.try_libc()
  return pcall(token.dlopen, token, "libc.so.6", { system = "(cstring) -> i32" })
end

return M
