-- structs.lua: struct results as struct values (fields by name) and as
-- buffers (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "structs" }

capffi.type("Outer", "{ tag: i8, in: { s: i16, d: f64 }, tail: i32 }")
local OUTER = "(i8, i16, f64, i32) -> Outer"
local fx = tok:dlopen(FIXTURE, {
  value = { name = "fx_outer_make", sig = OUTER, struct = "value" },
  buffer = { name = "fx_outer_make", sig = OUTER, struct = "buffer" },
  bytes = { name = "fx_outer_make", sig = OUTER, struct = "string" },
  plain = { name = "fx_outer_make", sig = OUTER },
  sum = { name = "fx_outer_sum", sig = "(Outer) -> f64" },
  big_sum = { name = "fx_big_sum", sig = "({ i64, i64, i64 }) -> i64" },
  mixed = { name = "fx_mixed_make", parameters = { "i64", "f64" },
            result = "{ i: i64, d: f64 }", struct = "value" },
})

t.test("fields_by_name", function()
  local o = fx.value(-1, 300, 0.5, 70000)
  t.eq(tostring(o), "capffi.struct(32 bytes)", "tostring")
  t.eq(#o, 32, "#o is the struct's size")
  t.eq(o.tag, -1, "tag")
  t.eq(math.type(o.tag), "integer", "an integer")
  t.eq(o.tail, 70000, "tail")
  local inner = o["in"]
  t.eq(tostring(inner), "capffi.struct(in, 16 bytes)", "a nested struct")
  t.eq(#inner, 16, "its size")
  t.eq(inner.s, 300, "in.s")
  t.eq(inner.d, 0.5, "in.d")
  t.eq(o["in.d"], 0.5, "a dotted path")
  t.eq(o["0"], -1, "a zero-based index path")
  t.eq(o["1.1"], 0.5, "an index path into the nested struct")
  t.eq(inner["0"], 300, "an index path under the part")
  local m = fx.mixed(-5, 2.25)
  t.eq(m.i, -5, "a struct of a Deno-style description")
  t.eq(m.d, 2.25, "d")
end)

t.test("the_bytes_are_the_c_layout", function()
  local o = fx.value(7, -2, 1.25, 9)
  local s = fx.bytes(7, -2, 1.25, 9)
  t.eq(type(s), "string", "struct = \"string\" gives a string")
  t.eq(fx.plain(7, -2, 1.25, 9), s, "and so does the default")
  t.eq(capffi.bytes(o), s, "capffi.bytes")
  t.eq(capffi.bytes(o["in"]), s:sub(9, 24), "a part's bytes")
  t.eq(string.unpack("i4", s, 1 + capffi.offsetof("Outer", "tail")), 9,
       "tail by offset")
end)

t.test("fields_are_written_with_argument_rules", function()
  local o = fx.value(1, 2, 3.0, 4)
  o.tag = -128
  o["in"].s = 32767
  o["in.d"] = 0.25
  o.tail = -1.0
  t.eq(o.tag, -128, "tag")
  t.eq(o["in"].s, 32767, "in.s")
  t.eq(math.type(o.tail), "integer", "an integral float is an integer")
  t.eq(fx.sum(o), -128 + 32767 + 0.25 - 1, "passed back as the argument")
  local e = t.raises("CAPFFI_ERANGE", function() o.tag = 128 end)
  t.says(e, "tag")
  t.raises("CAPFFI_ERANGE", function() o.tail = 2 ^ 31 end)
  t.raises("CAPFFI_ERANGE", function() o.tail = 0.5 end)
  t.raises("CAPFFI_ETYPE", function() o.tail = "1" end)
  t.raises("CAPFFI_ETYPE", function() o["in"] = 1 end)
  t.eq(o.tag, -128, "unchanged by the refusals")
end)

t.test("unknown_fields_are_errors", function()
  local o = fx.value(1, 2, 3.0, 4)
  local e = t.raises("CAPFFI_ENOTFOUND", function() return o.tial end)
  t.says(e, "tial")
  t.raises("CAPFFI_ENOTFOUND", function() return o["in"].x end)
  t.raises("CAPFFI_ENOTFOUND", function() return o["9"] end)
  t.raises("CAPFFI_ENOTFOUND", function() o.nosuch = 1 end)
  t.raises("CAPFFI_ETYPE", function() return o[1] end)
  t.raises("CAPFFI_ETYPE", capffi.bytes, "abc")
  t.raises("CAPFFI_ETYPE", capffi.bytes, capffi.buffer(4))
end)

t.test("struct_values_as_arguments", function()
  local o = fx.value(-1, 300, 0.5, 70000)
  t.eq(fx.sum(o), -1 + 300 + 0.5 + 70000, "a struct value")
  local e = t.raises("CAPFFI_ETYPE", fx.big_sum, o)
  t.says(e, "32 bytes given, 24 declared")
  t.raises("CAPFFI_ETYPE", fx.sum, o["in"])
end)

t.test("parts_keep_their_root", function()
  local inner = fx.value(1, 2, 8.5, 4)["in"]
  collectgarbage()
  collectgarbage()
  t.eq(inner.d, 8.5, "the root is alive while a part is")
  local roots = {}
  for i = 1, 200 do
    roots[i % 7 + 1] = fx.value(i % 100, i, i / 2, -i)["in"]
    t.eq(roots[i % 7 + 1].s, i, "churn")
  end
  collectgarbage()
end)

t.test("struct_results_as_buffers", function()
  local b = fx.buffer(-1, 300, 0.5, 70000)
  t.eq(tostring(b), "capffi.buffer(32 bytes)", "a buffer, as Deno's Uint8Array")
  local v = b:view("r")
  t.eq(v:get("i8", capffi.offsetof("Outer", "tag")), -1, "tag")
  t.eq(v:get("f64", capffi.offsetof("Outer", "in.d")), 0.5, "in.d")
  t.eq(fx.sum(b), -1 + 300 + 0.5 + 70000, "passed back")
  b:free()
  t.raises("CAPFFI_ECLOSED", fx.sum, b)
  t.eq(v:get("i32", 24), 70000, "the view holds the bytes")
end)

t.test("the_struct_option_is_checked", function()
  local e = t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE, {
    f = { name = "fx_outer_make", sig = OUTER, struct = "table" } })
  t.says(e, "\"table\"")
  e = t.raises("CAPFFI_EINVAL", tok.dlopen, tok, FIXTURE, {
    f = { name = "fx_add_i32", sig = "(i32, i32) -> i32", struct = "value" } })
  t.says(e, "i32")
  t.raises("CAPFFI_ETYPE", tok.dlopen, tok, FIXTURE, {
    f = { name = "fx_outer_make", sig = OUTER, struct = true } })
end)

t.test("libc_div_by_field_name", function()
  local c = tok:dlopen("libc.so.6", {
    div = { sig = "(i32, i32) -> { quot: i32, rem: i32 }", struct = "value" },
  })
  local r = c.div(47, 5)
  t.eq(r.quot, 9, "quot")
  t.eq(r.rem, 2, "rem")
  r = c.div(-7, 2)
  t.eq(r.quot, -3, "quot of a negative")
  t.eq(r.rem, -1, "rem of a negative")
  t.eq(#r, 8, "div_t is 8 bytes")
  c:close()
  t.eq(r.quot, -3, "the value outlives its library")
  t.raises("CAPFFI_ECLOSED", c.div, 1, 1)
end)

t.done()
