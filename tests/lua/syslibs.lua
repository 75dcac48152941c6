-- syslibs.lua: real system libraries by soname (run with
-- --allow-ffi=libz.so.1,libm.so.6,libsqlite3.so.0).
local t = require "harness"
local capffi = require "capffi"

local tok = capffi.token{ label = "syslibs",
                          paths = { "libz.so.1", "libm.so.6",
                                    "libsqlite3.so.0" } }

t.test("grants_are_files_named_by_soname", function()
  t.eq(capffi.permissions.query("libz.so.1"), "granted", "libz")
  t.eq(capffi.permissions.query(capffi.resolve("libm.so.6")), "granted",
       "libm by path")
  t.eq(capffi.permissions.query("libc.so.6"), "denied", "libc")
  t.raises("CAPFFI_EPERM", tok.dlopen, tok, "libc.so.6", {
    system = "(cstring) -> i32" })
  t.raises("CAPFFI_EPERM", capffi.token, { paths = { "libc.so.6" } })
end)

t.test("libm", function()
  local m = tok:dlopen("libm.so.6", {
    cos = "(f64) -> f64",
    ldexp = "(f64, i32) -> f64",
    cosf = "(f32) -> f32",
  })
  t.eq(m.cos(0), 1.0, "cos 0")
  t.ok(math.abs(m.cos(1) - math.cos(1)) < 1e-15, "cos 1")
  t.eq(m.ldexp(1.5, 4), 24.0, "ldexp")
  t.eq(m.cosf(0), 1.0, "cosf")
end)

t.test("symbols_must_belong_to_the_library", function()
  -- libm's handle reaches libc's system through its dependencies
  local e = t.raises("CAPFFI_EPERM", tok.dlopen, tok, "libm.so.6", {
    system = "(cstring) -> i32" })
  t.says(e, "libc")
end)

t.test("libz_round_trip", function()
  local z = tok:dlopen("libz.so.1", {
    zlibVersion = "() -> cstring",
    compressBound = "(u64) -> u64",
    compress2 = "(buffer, buffer, buffer, u64, i32) -> i32",
    uncompress = "(buffer, buffer, buffer, u64) -> i32",
    crc32 = "(u64, buffer, u32) -> u64",
  })
  t.ok(z.zlibVersion():match("^%d+%.%d+"), "version")
  local text = ("capability "):rep(200)
  local src = capffi.buffer(text)
  local cap = z.compressBound(#src)
  local packed = capffi.buffer(cap)
  local packed_len = capffi.buffer(string.pack("J", cap)) -- uLongf, in/out
  t.eq(z.compress2(packed, packed_len, src, #src, 9), 0, "Z_OK")
  local n = string.unpack("J", packed_len:tostring())
  t.ok(n > 0 and n < #text // 10, "compressed well")
  local out = capffi.buffer(#text)
  local out_len = capffi.buffer(string.pack("J", #text))
  t.eq(z.uncompress(out, out_len, packed, n), 0, "Z_OK")
  t.eq(string.unpack("J", out_len:tostring()), #text, "length")
  t.eq(out:tostring(), text, "identical")
  t.eq(z.crc32(0, capffi.buffer("hello"), 5), 0x3610a686, "crc32")
  -- too small an output: zlib's own error, not a capffi one
  local small = capffi.buffer(4)
  t.eq(z.uncompress(small, capffi.buffer(string.pack("J", 4)), packed, n), -5,
       "Z_BUF_ERROR")
end)

t.test("sqlite_query_through_plain_calls", function()
  -- Handles come back through out-parameters (sqlite3 **): the pointer is
  -- read from the buffer as an integer and passed as usize, which the C
  -- calling convention passes as it passes a pointer.
  local sq = tok:dlopen("libsqlite3.so.0", {
    sqlite3_libversion = "() -> cstring",
    sqlite3_open = "(cstring, buffer) -> i32",
    sqlite3_close = "(usize) -> i32",
    sqlite3_errmsg = "(usize) -> cstring",
    sqlite3_exec = "(usize, cstring, pointer, pointer, pointer) -> i32",
    sqlite3_prepare_v2 = "(usize, cstring, i32, buffer, pointer) -> i32",
    sqlite3_bind_int64 = "(usize, i32, i64) -> i32",
    sqlite3_step = "(usize) -> i32",
    sqlite3_column_text = "(usize, i32) -> cstring",
    sqlite3_column_int64 = "(usize, i32) -> i64",
    sqlite3_finalize = "(usize) -> i32",
  })
  t.ok(sq.sqlite3_libversion():match("^3%."), "version")
  local out = capffi.buffer(8)
  t.eq(sq.sqlite3_open(":memory:", out), 0, "SQLITE_OK")
  local db = string.unpack("J", out:tostring())
  t.ok(db ~= 0, "a handle")
  t.eq(sq.sqlite3_exec(db, [[
    CREATE TABLE libs (name TEXT, rights INTEGER);
    INSERT INTO libs VALUES ('libz', 1), ('libsqlite3', 1), ('libc', 0);
  ]], nil, nil, nil), 0, "exec")
  t.eq(sq.sqlite3_prepare_v2(db,
       "SELECT name, rights FROM libs WHERE rights >= ? ORDER BY name",
       -1, out, nil), 0, "prepare")
  local stmt = string.unpack("J", out:tostring())
  t.eq(sq.sqlite3_bind_int64(stmt, 1, 1), 0, "bind")
  local rows = {}
  while sq.sqlite3_step(stmt) == 100 do -- SQLITE_ROW
    rows[#rows + 1] = sq.sqlite3_column_text(stmt, 0) .. "="
                      .. sq.sqlite3_column_int64(stmt, 1)
  end
  t.eq(table.concat(rows, ","), "libsqlite3=1,libz=1", "rows")
  t.eq(sq.sqlite3_finalize(stmt), 0, "finalize")
  t.eq(sq.sqlite3_exec(db, "SELEKT", nil, nil, nil), 1, "SQLITE_ERROR")
  t.ok(sq.sqlite3_errmsg(db):find("syntax error", 1, true), "errmsg")
  t.eq(sq.sqlite3_close(db), 0, "close")
end)

t.done()
