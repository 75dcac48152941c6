-- store.lua: the trusted module of the demo. It takes its token once, when
-- it is loaded, scoped to the two libraries it needs and to what it does
-- with them (open them, hand sqlite a callback), and keeps it in a local
-- that no other code can reach. Revoking the application's FFI permission
-- later does not stop it; nothing else can use the token.
--
-- It runs in safe mode: its token has neither the pointer nor the read nor
-- the write right, so no raw address ever reaches it. Native memory is
-- reached through classes (SafeFFI, docs/lua.md): sqlite's connection and
-- statements are opaque instances that sqlite hands back through
-- out-parameters and that their destructors (sqlite3_close,
-- sqlite3_finalize) release exactly once; the rows of sqlite3_exec arrive
-- as counted arrays of strings; zlib's lengths are u64 instances.
local capffi = require "capffi"

local token = capffi.token{
  label = "store",
  rights = { "dlopen", "callback" },
  paths = { "libz.so.1", "libsqlite3.so.0" },
}

-- The classes only this token sees. sqlite's handles are opaque: their
-- addresses stay inside the instances, for sqlite alone to read.
token:class("sqlite3", "opaque")
token:class("sqlite3_stmt", "opaque")
token:class("unused", "opaque") -- void * arguments the module passes NULL

local z, sq -- opened on first use, possibly after FFI was revoked

local function zlib()
  -- compress2(Bytef *dest, uLongf *destLen, const Bytef *src, uLong len,
  -- int level): destLen is in and out, a u64 instance. The destination
  -- has no count parameter: the length the module passes is its size.
  z = z or token:dlopen("libz.so.1", {
    compressBound = "(u64) -> u64",
    compress2 = "(*u8, *u64, cstring, u64, i32) -> i32",
    uncompress = "(*u8, *u64, *[$3]u8, u64) -> i32",
  })
  return z
end

local function sqlite()
  sq = sq or token:dlopen("libsqlite3.so.0", {
    sqlite3_libversion = "() -> cstring",
    -- sqlite3 **: an out-parameter; the instance owns the connection.
    sqlite3_open = "(cstring, out own *sqlite3 by sqlite3_close) -> i32",
    sqlite3_errmsg = "(*sqlite3) -> cstring",
    sqlite3_exec = "(*sqlite3, cstring, function, ?*unused, ?*unused) -> i32",
    sqlite3_prepare_v2 = "(*sqlite3, cstring, i32, " ..
                         "out own *sqlite3_stmt by sqlite3_finalize, " ..
                         "?*unused) -> i32",
    -- the last parameter is the destructor: SQLITE_TRANSIENT, (void *)-1,
    -- passed as the integer -1 (sqlite copies the text)
    sqlite3_bind_text = "(*sqlite3_stmt, i32, cstring, i32, isize) -> i32",
    sqlite3_step = "(*sqlite3_stmt) -> i32",
    sqlite3_reset = "(*sqlite3_stmt) -> i32",
  })
  return sq
end

local M = {}

-- What the module's token may do (a description; never the token).
function M.describe()
  return token:info()
end

-- The first n bytes of a u8 array instance, as a string.
local function bytes_of(arr, n)
  local parts = {}
  for i = 0, n - 1 do parts[i + 1] = string.char(arr[i]) end
  return table.concat(parts)
end

-- A u8 array instance holding s.
local function array_of(s)
  local arr = token:new(("[%d]u8"):format(math.max(#s, 1)))
  for i = 1, #s do arr[i - 1] = s:byte(i) end
  return arr
end

-- Compress text with zlib; returns the compressed bytes.
function M.compress(text)
  local lib = zlib()
  local room = lib.compressBound(#text)
  local out <close> = token:new(("[%d]u8"):format(room))
  local len <close> = token:new("u64", { [0] = room })
  assert(lib.compress2(out, len, text, #text, 9) == 0, "compress2 failed")
  return bytes_of(out, len[0])
end

-- Restore what compress made, given the original length.
function M.decompress(packed, n)
  local lib = zlib()
  local out <close> = token:new(("[%d]u8"):format(n))
  local len <close> = token:new("u64", { [0] = n })
  local src <close> = array_of(packed)
  assert(lib.uncompress(out, len, src, #packed) == 0, "uncompress failed")
  return bytes_of(out, len[0])
end

-- Load rows into an in-memory table and run one query over them; the rows
-- arrive through sqlite3_exec's callback. Returns sqlite's version and the
-- result rows.
function M.query(create, insert, rows, select)
  local lib = sqlite()
  -- The connection comes back as the second result; closing the variable
  -- calls sqlite3_close, once, whatever happens below.
  local rc, db <close> = lib.sqlite3_open(":memory:")
  assert(rc == 0 and db, "sqlite3_open failed")
  local function check(rc, what)
    if rc ~= 0 and rc ~= 100 and rc ~= 101 then
      error(what .. ": " .. lib.sqlite3_errmsg(db), 2)
    end
    return rc
  end
  check(lib.sqlite3_exec(db, create, nil, nil, nil), "create")
  -- Inserts bind their values (never spliced into SQL text).
  do
    local prc, stmt <close> = lib.sqlite3_prepare_v2(db, insert, -1, nil)
    check(prc, "prepare")
    for _, row in ipairs(rows) do
      for i, v in ipairs(row) do
        check(lib.sqlite3_bind_text(stmt, i, tostring(v), -1, -1), "bind")
      end
      check(lib.sqlite3_step(stmt), "insert")
      check(lib.sqlite3_reset(stmt), "reset")
    end
  end -- sqlite3_finalize(stmt)
  -- int (*)(void *arg, int ncols, char **values, char **names): the
  -- values are a counted array of strings (ncols is parameter 1), valid
  -- while the callback runs; 0 goes on; the default result 1, which
  -- native code gets if the handler fails, makes sqlite3_exec stop.
  local result = {}
  local row <close> = token:callback(
    "(?*unused, i32, *[$1]cstring, *[$1]cstring) -> i32",
    function(_, ncols, values)
      local r = {}
      for i = 0, ncols - 1 do r[i + 1] = values[i] or "NULL" end
      result[#result + 1] = r
      return 0
    end, { result = 1 })
  check(lib.sqlite3_exec(db, select, row, nil, nil), "select")
  return lib.sqlite3_libversion(), result
end

-- The token is scoped: even this module cannot load libc with it.
function M.try_libc()
  return pcall(token.dlopen, token, "libc.so.6", { system = "(cstring) -> i32" })
end

return M
