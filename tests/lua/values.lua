-- values.lua: converting Lua values to and from every declared type
-- (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "values" }

local defs = {
  fx_add_u64 = "(u64, u64) -> u64",
  fx_add_i64 = "(i64, i64) -> i64",
  fx_strlen = "(cstring) -> usize",
  fx_greeting = "() -> cstring",
  fx_null = "() -> pointer",
  fx_id_ptr = "(pointer) -> pointer",
  fx_get_adder = "() -> function",
  fx_mixed6 = "(i32, f64, i64, f32, u8, f64) -> f64",
  fx_sum16_i64 = "(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, "
                 .. "i64, i64, i64, i64, i64) -> i64",
  fx_sum_ints = "(i32, ...: i32, i32, i32) -> i32",
  fx_sum_doubles = "(i32, ...: f64, f64) -> f64",
  fx_vec2_scale = "({ f32, f32 }, f32) -> { f32, f32 }",
  fx_mixed_make = "(i64, f64) -> { i64, f64 }",
  fx_mixed_sum = "({ i64, f64 }) -> f64",
  fx_rgb_invert = "({ u8, u8, u8 }) -> { u8, u8, u8 }",
  fx_big_make = "(i64, i64, i64) -> { i64, i64, i64 }",
  fx_big_sum = "({ i64, i64, i64 }) -> i64",
  fx_huge_fill = "(f64) -> { f64, f64, f64, f64, f64, f64, f64, f64 }",
  fx_huge_sum = "({ f64, f64, f64, f64, f64, f64, f64, f64 }) -> f64",
  fx_i8_to_i32 = "(i8) -> i32",
  fx_u8_to_u32 = "(u8) -> u32",
  wrap_i8 = { name = "fx_id_i8", sig = "(i8) -> i8", wrap = true },
  wrap_u8 = { name = "fx_id_u8", sig = "(u8) -> u8", wrap = true },
  wrap_u32 = { name = "fx_id_u32", sig = "(u32) -> u32", wrap = true },
}
for _, ty in ipairs{ "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64",
                     "u64", "isize", "usize", "f32", "f64" } do
  defs["fx_id_" .. ty] = ("(%s) -> %s"):format(ty, ty)
end
local fx = tok:dlopen(FIXTURE, defs)

t.test("bool", function()
  t.eq(fx.fx_id_bool(true), true, "true")
  t.eq(fx.fx_id_bool(false), false, "false")
  t.raises("CAPFFI_ETYPE", fx.fx_id_bool, 1)
  t.raises("CAPFFI_ETYPE", fx.fx_id_bool, nil)
end)

t.test("small_integers_at_their_bounds", function()
  local bounds = {
    i8 = { -128, 127 }, u8 = { 0, 255 }, i16 = { -32768, 32767 },
    u16 = { 0, 65535 }, i32 = { -2147483648, 2147483647 },
    u32 = { 0, 4294967295 },
  }
  for ty, b in pairs(bounds) do
    local id = fx["fx_id_" .. ty]
    t.eq(id(b[1]), b[1], ty .. " low")
    t.eq(id(b[2]), b[2], ty .. " high")
    t.eq(math.type(id(b[2])), "integer", ty .. " result is an integer")
    local e = t.raises("CAPFFI_ERANGE", id, b[1] - 1)
    t.says(e, "fx_id_" .. ty .. ": argument 1 (" .. ty .. ")")
    t.raises("CAPFFI_ERANGE", id, b[2] + 1)
  end
  t.eq(fx.fx_i8_to_i32(-1), -1, "sign extension")
  t.eq(fx.fx_u8_to_u32(255), 255, "zero extension")
end)

t.test("wrap_makes_small_integers_wrap", function()
  t.eq(fx.wrap_i8(200), -56, "i8")
  t.eq(fx.wrap_u8(-1), 255, "u8")
  t.eq(fx.wrap_u8(256 + 7), 7, "u8 high")
  t.eq(fx.wrap_u32(-1), 4294967295, "u32")
end)

t.test("i64_is_exact", function()
  t.eq(fx.fx_id_i64(math.maxinteger), math.maxinteger, "max")
  t.eq(fx.fx_id_i64(math.mininteger), math.mininteger, "min")
  t.eq(fx.fx_id_isize(-5), -5, "isize")
  t.eq(fx.fx_add_i64(1 << 62, (1 << 62) - 1), math.maxinteger, "add")
  -- integral floats are accepted, exactly
  t.eq(fx.fx_id_i64(2.0 ^ 62), 1 << 62, "2^62 as a float")
  t.eq(math.type(fx.fx_id_i64(2.0)), "integer", "result is an integer")
  t.eq(fx.fx_id_i64(-2.0 ^ 63), math.mininteger, "-2^63 as a float")
  t.raises("CAPFFI_ERANGE", fx.fx_id_i64, 2.0 ^ 63)
  t.raises("CAPFFI_ERANGE", fx.fx_id_i64, 1.5)
  t.raises("CAPFFI_ERANGE", fx.fx_id_i64, 0 / 0)
  t.raises("CAPFFI_ERANGE", fx.fx_id_i64, math.huge)
  t.raises("CAPFFI_ETYPE", fx.fx_id_i64, "1")
end)

t.test("u64_above_2_63_is_the_wrapped_integer", function()
  local max = fx.fx_id_u64(-1)
  t.eq(max, -1, "2^64 - 1 comes back as -1")
  t.eq(capffi.u64tostring(max), "18446744073709551615", "its text")
  local top = fx.fx_add_u64(math.maxinteger, 1)
  t.eq(top, math.mininteger, "2^63 comes back as math.mininteger")
  t.eq(capffi.u64tostring(top), "9223372036854775808", "its text")
  t.eq(fx.fx_id_u64(capffi.u64fromstring("18446744073709551615")), -1,
       "from text")
  t.eq(capffi.u64fromstring("9223372036854775807"), math.maxinteger, "max")
  t.eq(capffi.u64fromstring("0"), 0, "zero")
  -- a float in [2^63, 2^64) is a value
  t.eq(fx.fx_id_u64(2.0 ^ 63), math.mininteger, "2^63 as a float")
  t.eq(capffi.u64tostring(fx.fx_id_usize(2.0 ^ 64 - 2048)),
       "18446744073709549568", "usize near the top")
  t.raises("CAPFFI_ERANGE", fx.fx_id_u64, 2.0 ^ 64)
  t.raises("CAPFFI_ERANGE", fx.fx_id_u64, -1.0)
  t.ok(math.ult(1, fx.fx_id_u64(-1)), "math.ult compares as unsigned")
  t.eq(fx.fx_add_u64(-1, 2), 1, "arithmetic wraps modulo 2^64")
end)

t.test("floats", function()
  t.eq(fx.fx_id_f64(0.1), 0.1, "f64 exact")
  t.eq(fx.fx_id_f64(3), 3.0, "an integer becomes a float")
  t.eq(math.type(fx.fx_id_f64(3)), "float", "float result")
  t.eq(fx.fx_id_f64(9007199254740993), 9007199254740992.0,
       "integers beyond 2^53 round to the nearest f64")
  t.eq(fx.fx_id_f32(1.5), 1.5, "f32 exact")
  t.eq(fx.fx_id_f32(0.1), string.unpack("f", string.pack("f", 0.1)),
       "f32 rounds")
  t.eq(fx.fx_id_f32(math.huge), math.huge, "infinity")
  t.ok(fx.fx_id_f32(0 / 0) ~= fx.fx_id_f32(0 / 0), "NaN")
  t.raises("CAPFFI_ERANGE", fx.fx_id_f32, 1e39)
  t.raises("CAPFFI_ETYPE", fx.fx_id_f64, "1.0")
  t.eq(fx.fx_mixed6(1, 2.5, 3, 4.5, 5, 6.5), 22.5, "mixed registers")
end)

t.test("many_arguments", function()
  t.eq(fx.fx_sum16_i64(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                       16), 136, "16 integers")
  -- a Deno-style description longer than Lua's string buffer
  local params = {}
  for i = 1, 16 do params[i] = (" "):rep(100) .. "i64" end
  local lib = tok:dlopen(FIXTURE, {
    sum = { name = "fx_sum16_i64", parameters = params, result = "i64" } })
  t.eq(lib.sum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), 136,
       "bound from a long description")
end)

t.test("variadic", function()
  t.eq(fx.fx_sum_ints(3, 10, 20, 30), 60, "ints")
  t.eq(fx.fx_sum_doubles(2, 1.25, 2.5), 3.75, "doubles")
end)

t.test("strings", function()
  t.eq(fx.fx_greeting(), "hello from fixture", "cstring result")
  t.eq(fx.fx_strlen("capffi"), 6, "cstring argument")
  t.eq(fx.fx_strlen(""), 0, "empty")
  t.raises("CAPFFI_ETYPE", fx.fx_strlen, nil) -- never NULL (errors.lua)
  t.eq(fx.fx_strlen(("x"):rep(100000)), 100000, "long")
end)

t.test("pointers", function()
  t.eq(fx.fx_null(), nil, "NULL is nil")
  t.eq(fx.fx_id_ptr(nil), nil, "nil passes NULL")
  local adder = fx.fx_get_adder()
  t.eq(type(adder), "userdata", "a pointer is a light userdata")
  t.eq(fx.fx_id_ptr(adder), adder, "round trip")
  t.eq(getmetatable(adder), nil, "no methods on a pointer")
  local add = tok:fnptr(adder, "(i32, i32) -> i32")
  t.eq(add(20, 22), 42, "fnptr call")
  t.raises("CAPFFI_ERANGE", add, 2 ^ 31, 0)
  local narrow = tok:attenuate{ rights = { "dlopen" } }
  t.raises("CAPFFI_EPERM", narrow.fnptr, narrow, adder, "(i32, i32) -> i32")
  t.raises("CAPFFI_ETYPE", tok.fnptr, tok, 1234, "() -> void")
  t.raises("CAPFFI_ESIG", tok.fnptr, tok, adder, "(i32, i32)")
end)

t.test("structs_as_strings", function()
  local v = fx.fx_vec2_scale(string.pack("ff", 1.5, -2), 2)
  local x, y = string.unpack("ff", v)
  t.eq(x, 3.0, "x")
  t.eq(y, -4.0, "y")
  local m = fx.fx_mixed_make(5, 2.5)
  t.eq(#m, 16, "size")
  local i, d = string.unpack("i8d", m)
  t.eq(i, 5, "i")
  t.eq(d, 2.5, "d")
  t.eq(fx.fx_mixed_sum(m), 7.5, "passed back")
  t.eq(fx.fx_rgb_invert("\1\2\3"), "\254\253\252", "3 bytes")
  local big = fx.fx_big_make(1, 2, 3)
  t.eq(#big, 24, "memory-class struct")
  t.eq(fx.fx_big_sum(big), 6, "memory-class argument")
  local huge = fx.fx_huge_fill(1)
  t.eq(#huge, 64, "64 bytes")
  t.eq(fx.fx_huge_sum(huge), 36, "1 + ... + 8")
  t.eq(select(8, string.unpack(("d"):rep(8), huge)), 8.0, "last field")
end)

t.test("structs_from_buffers", function()
  local b = capffi.buffer(string.pack("i8i8i8", 10, 20, 30))
  t.eq(fx.fx_big_sum(b), 60, "a buffer of the struct's size")
  local e = t.raises("CAPFFI_ETYPE", fx.fx_big_sum, capffi.buffer(23))
  t.says(e, "23 bytes given, 24 declared")
  b:free()
  t.raises("CAPFFI_ECLOSED", fx.fx_big_sum, b)
end)

t.test("struct_fields_by_offset", function()
  capffi.type("Outer", "{ tag: i8, in: { s: i16, d: f64 }, tail: i32 }")
  local make = tok:dlopen(FIXTURE, {
    fx_outer_make = "(i8, i16, f64, i32) -> Outer",
    fx_outer_sum = "(Outer) -> f64",
  })
  local o = make.fx_outer_make(-1, 300, 0.5, 70000)
  t.eq(#o, capffi.sizeof("Outer"), "size")
  t.eq(string.unpack("i1", o, 1 + capffi.offsetof("Outer", "tag")), -1, "tag")
  t.eq(string.unpack("i4", o, 1 + capffi.offsetof("Outer", "tail")), 70000,
       "tail")
  t.eq(make.fx_outer_sum(o), -1 + 300 + 0.5 + 70000, "sum")
end)

t.done()
