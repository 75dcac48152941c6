-- safeffi.lua: classes, instances, typed pointers, out-parameters, owned
-- results and safe mode from Lua (run with --allow-ffi --allow-run).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local RUNNER = os.getenv("CAPFFI_LUA")

-- The fixture's record (tests/fixtures/fixture.h). A class cannot name
-- itself, so `next` points to a Node: the same bytes under another name.
capffi.class("Node", "{ id: i32, score: f64, name: [16]u8, next: pointer }")
capffi.class("Rec",
             "{ readonly id: i32, score: f64, name: [16]u8, next: *Node }")
capffi.class("Pt", "{ x: i32, y: i32 }")
capffi.class("Shape", "{ readonly origin: Pt, pts: [3]Pt, tag: [4]u8, " ..
             "label: cstring, rec: *Rec, small: i8, count: u16, on: bool }")
capffi.class("Ud", "opaque")

local tok = capffi.token{ label = "safeffi" }
local REC_OPEN = "(i32, out own *Rec by fx_rec_free) -> i32"
local function open_fx(through)
  return (through or tok):dlopen(FIXTURE, {
    rec_new = { name = "fx_rec_new", sig = "(i32) -> own *Rec by fx_rec_free" },
    rec_open = { name = "fx_rec_open", sig = REC_OPEN },
    rec_static = { name = "fx_rec_static", sig = "() -> *Rec" },
    rec_sum = { name = "fx_rec_sum", sig = "(*Rec) -> i64" },
    rec_link = { name = "fx_rec_link", sig = "(*Rec, ?*Rec) -> void" },
    frees = { name = "fx_rec_frees", sig = "() -> i32" },
    reset = { name = "fx_rec_reset", sig = "() -> void" },
    parse = { name = "fx_parse_i32", sig = "(cstring, out i32) -> void" },
    sum = { name = "fx_sum_i32", sig = "(*[$1]i32, i32) -> i64" },
    rows = { name = "fx_rows", sig = "(function, ?*Ud) -> i32" },
    node_sum = { name = "fx_rec_sum", sig = "(*Node) -> i64" },
  })
end
local fx = open_fx()
local ROW = "(?*Ud, i32, *[$1]cstring, *[$1]cstring) -> i32"

t.test("host_instances_fields_nested_and_arrays", function()
  local s = capffi.new("Shape", { small = -5,
                                  count = 65535, on = true,
                                  pts = { [0] = { x = 7 }, [2] = { y = 9 } } })
  t.eq(tostring(s), "capffi.instance(Shape)", "tostring names the class")
  t.ok(not tostring(s):find("0x"), "and no address")
  t.eq(capffi.classof(s), "Shape", "classof")
  t.eq(s.origin.x, 0, "nested read")
  t.eq(s["origin.y"], 0, "a dotted path")
  t.raises("CAPFFI_EPERM", capffi.new, "Shape", { origin = { x = 1 } })
  t.eq(s.small, -5, "i8")
  t.eq(s.count, 65535, "u16")
  t.eq(s.on, true, "bool")
  t.eq(s.pts[0].x, 7, "array of structs, index 0")
  t.eq(s.pts[2].y, 9, "index 2")
  t.eq(s["pts[2].y"], 9, "by path")
  t.eq(#s.pts, 3, "#s.pts")
  t.eq(#s.tag, 4, "#s.tag")
  t.eq(s.label, nil, "a NULL cstring reads nil")
  t.eq(s.rec, nil, "a NULL *NAME reads nil")
  s.tag[3] = 255
  t.eq(s.tag[3], 255, "u8 element written")
  s.pts[1] = { x = 4, y = 5 }
  t.eq(s.pts[1].y, 5, "a table assigns a part")
  t.eq(tostring(s.origin), "capffi.instance(Shape.origin)", "a part")
  t.eq(capffi.classof(s.origin), "Shape", "a part's class is its instance's")
  -- two instances of a class share the compiled field, not the values
  local s2 = capffi.new("Shape")
  t.eq(s2.small, 0, "zeroed")
  s2.small = 3
  t.eq(s.small, -5, "the first keeps its value")
  for i = 1, 100 do s2.count = i end
  t.eq(s2.count, 100, "a repeated write")
end)

t.test("array_and_scalar_instances", function()
  local a = capffi.new("[5]i32", { [0] = 10, 20, 30, 40, 50 })
  t.eq(tostring(a), "capffi.instance(i32[5])", "tostring")
  t.eq(#a, 5, "#a is the element count")
  t.eq(a[0], 10, "0-based")
  t.eq(a[4], 50, "last")
  t.eq(fx.sum(a, 5), 150, "*[$1]i32 takes it")
  t.eq(fx.sum(a, 3), 60, "or a prefix")
  local e = t.raises("CAPFFI_EBOUNDS", fx.sum, a, 6)
  t.says(e, "5")
  t.raises("CAPFFI_EBOUNDS", function() return a[5] end)
  t.raises("CAPFFI_EBOUNDS", function() a[5] = 1 end)
  t.raises("CAPFFI_EBOUNDS", function() return a[-1] end)
  t.raises("CAPFFI_ERANGE", function() a[0] = 2 ^ 40 end)
  t.raises("CAPFFI_ETYPE", function() a[0] = "x" end)
  local p = capffi.new("i32", { [0] = 7 })
  t.eq(p[0], 7, "a scalar instance is p[0]")
  t.eq(#p, 1, "#p is 1")
  t.raises("CAPFFI_EBOUNDS", function() return p[1] end)
  local rs = capffi.new("[2]Rec")
  t.eq(#rs, 2, "array of a class")
  rs[1].score = 1.5
  t.eq(rs[1].score, 1.5, "its element's field")
  t.raises("CAPFFI_EPERM", function() rs[0].id = 1 end)
end)

t.test("bad_input", function()
  local s = capffi.new("Shape")
  local e = t.raises("CAPFFI_ENOTFOUND", function() return s.nosuch end)
  t.says(e, "nosuch")
  t.raises("CAPFFI_ENOTFOUND", function() s.nosuch = 1 end)
  e = t.raises("CAPFFI_EPERM", function() s.origin.x = 1 end)
  t.says(e, "readonly")
  t.raises("CAPFFI_EBOUNDS", function() return s.pts[3] end)
  t.raises("CAPFFI_EBOUNDS", function() return s.tag[4] end)
  t.raises("CAPFFI_ERANGE", function() s.small = 128 end)
  t.raises("CAPFFI_ETYPE", function() s.origin = 3 end)
  t.raises("CAPFFI_ETYPE", function() s.label = "text" end)
  t.raises("CAPFFI_ETYPE", function() return s[true] end)
  t.raises("CAPFFI_ETYPE", function() return s[0] end)
  -- an instance of the wrong class, nil where none is allowed
  local n = capffi.new("Node")
  e = t.raises("CAPFFI_ETYPE", fx.rec_sum, n)
  t.says(e, "Node")
  t.raises("CAPFFI_ETYPE", function() s.rec = n end)
  t.raises("CAPFFI_ETYPE", fx.rec_sum, s.origin) -- a part is no instance
  t.raises("CAPFFI_ETYPE", fx.rec_sum, "rec")
  t.raises("CAPFFI_EINVAL", fx.rec_sum, nil)
  t.raises("CAPFFI_ENOTFOUND", capffi.new, "NoClass")
  t.raises("CAPFFI_ETYPE", capffi.new, "Ud") -- opaque: native code's
  t.raises("CAPFFI_ESIG", capffi.class, "Bad", "{ x: i32, [3 }")
  t.raises("CAPFFI_ETYPE", capffi.classof, {})
  -- a double free is refused without reaching capffi again
  n:free()
  e = t.raises("CAPFFI_EINVAL", n.free, n)
  t.says(e, "already freed")
  t.raises("CAPFFI_EINVAL", function() return n.id end)
  t.raises("CAPFFI_EINVAL", fx.node_sum, n)
  t.eq(tostring(n), "capffi.instance(Node, freed)", "tostring after free")
  t.raises("CAPFFI_EINVAL", capffi.free, s.origin)
end)

t.test("owned_results_are_released_once", function()
  fx.reset()
  local r = fx.rec_new(7)
  t.eq(capffi.classof(r), "Rec", "an owned *Rec result")
  t.eq(r.id, 7, "id")
  t.eq(r.score, 10.5, "score")
  t.eq(r.name[0], string.byte("r"), "name[0]")
  t.eq(capffi.leaks(), 1, "one owned instance")
  r.score = 2.5
  t.eq(fx.rec_sum(r), 9, "a *Rec argument")
  r:free()
  t.eq(fx.frees(), 1, "obj:free runs the destructor")
  t.eq(capffi.leaks(), 0, "no leak")
  t.raises("CAPFFI_EINVAL", r.free, r)
  t.eq(fx.frees(), 1, "a second free does not")
  do
    local c <close> = fx.rec_new(2)
    t.eq(c.id, 2, "a to-be-closed instance")
  end
  t.eq(fx.frees(), 2, "<close> runs it")
  do
    local c <close> = fx.rec_new(3)
    c:free()
  end
  t.eq(fx.frees(), 3, "free then <close>: once")
  local g = fx.rec_new(4)
  g = nil
  collectgarbage()
  collectgarbage()
  t.eq(fx.frees(), 4, "the collector runs it")
  t.eq(capffi.leaks(), 0, "no leak")
  t.eq(fx.rec_new(-1), nil, "a NULL result is nil")
end)

t.test("out_parameters_come_back_after_the_result", function()
  fx.reset()
  local rc, r = fx.rec_open(9)
  t.eq(rc, 0, "the result first")
  t.eq(capffi.classof(r), "Rec", "then the out instance")
  t.eq(r.id, 9, "its field")
  local rc2, none = fx.rec_open(-1)
  t.eq(rc2, 1, "failed open")
  t.eq(none, nil, "a NULL out instance is nil")
  t.eq(fx.parse("-42"), -42, "out i32 of a void function")
  t.eq(select("#", fx.parse("5")), 1, "one value")
  t.raises("CAPFFI_EINVAL", fx.parse, "1", 2) -- outs take no argument
  r:free()
  t.eq(fx.frees(), 1, "freed once")
  -- a nonblocking call has no out-parameters to give back
  t.raises("CAPFFI_ETYPE", fx.rec_open.async, fx.rec_open, 1)
end)

t.test("borrowed_instances_and_pointer_fields", function()
  local s = fx.rec_static()
  t.eq(s.id, 42, "a borrowed *Rec result")
  t.eq(s.next, nil, "NULL *Node field")
  local a, b = fx.rec_new(1), fx.rec_new(2)
  local bn = capffi.new("Node")
  t.raises("CAPFFI_ETYPE", fx.rec_link, a, bn)
  fx.rec_link(a, b)
  local nx = a.next
  t.eq(capffi.classof(nx), "Node", "a *Node field reads as an instance")
  t.eq(nx.id, 2, "of what native code linked")
  fx.rec_link(a, nil)
  t.eq(a.next, nil, "?*Rec takes nil")
  a.next = bn
  bn.id = 77
  t.eq(a.next.id, 77, "a *Node field takes an instance")
  a.next = nil
  nx:free() -- a borrowed instance: b's memory is untouched
  t.eq(b.id, 2, "b intact")
  a:free()
  b:free()
end)

t.test("borrowed_after_close_and_revoke", function()
  local lib = open_fx()
  local s = lib.rec_static()
  local o = lib.rec_new(5)
  fx.reset()
  lib:close()
  local e = t.raises("CAPFFI_ECLOSED", function() return s.id end)
  t.says(e, "closed")
  t.eq(fx.frees(), 1, "closing the library released the owned one")
  t.raises("CAPFFI_ECLOSED", function() return o.id end)
  o:free()
  t.eq(fx.frees(), 1, "and its free does not run it again")
  local child = tok:attenuate{ label = "child" }
  local lib2 = open_fx(child)
  local s2 = lib2.rec_static()
  child:revoke()
  t.raises("CAPFFI_EREVOKED", function() return s2.id end)
  t.raises("CAPFFI_EREVOKED", function() s2.score = 1 end)
end)

t.test("callback_instances_live_during_the_call", function()
  local got, kept = {}, nil
  local cb <close> = tok:callback(ROW, function(ud, n, vals, names)
    t.eq(ud, nil, "?*Ud nil")
    t.eq(#vals, n, "#vals is the count argument")
    t.eq(capffi.classof(vals), "cstring", "rows are cstring instances")
    got[#got + 1] = names[0] .. "=" .. vals[0] .. "," .. names[1] .. "=" ..
                    vals[1]
    t.raises("CAPFFI_EBOUNDS", function() return vals[2] end)
    t.raises("CAPFFI_EINVAL", vals.free, vals)
    kept = vals
    return 0
  end)
  t.eq(fx.rows(cb, nil), 0, "exec-shaped call")
  t.eq(got[1], "id=1,name=one", "row 1")
  t.eq(got[2], "id=2,name=two", "row 2")
  local e = t.raises("CAPFFI_ECLOSED", function() return kept[0] end)
  t.says(e, "callback")
  t.raises("CAPFFI_ECLOSED", function() return #kept end)
  t.raises("CAPFFI_ECLOSED", fx.sum, kept, 1)
  t.eq(tostring(kept), "capffi.instance(cstring, ended)", "tostring")
  collectgarbage() -- an ended argument is never freed
  local stop <close> = tok:callback(ROW, function() return 1 end)
  t.eq(fx.rows(stop, nil), 4, "a nonzero result stops the rows")
end)

t.test("cached_fields_still_checked", function()
  -- once a field is cached, obj.x goes straight to its accessor: every
  -- refusal must still come out as it did the first time
  local p = capffi.new("Shape", { small = 1 })
  for i = 1, 3 do
    p.small = i
    t.eq(p.small, i, "cached read and write " .. i)
    t.raises("CAPFFI_ERANGE", function() p.small = 200 end)
    t.raises("CAPFFI_ETYPE", function() p.small = "x" end)
    t.raises("CAPFFI_ERANGE", function() p.small = 1.5 end)
    t.raises("CAPFFI_EPERM", function() p["origin.x"] = 1 end)
    t.eq(p["origin.x"], 0, "a readonly field reads")
  end
  local q = capffi.new("Pt")
  t.eq(q.x, 0, "another class's x")
  p:free()
  t.raises("CAPFFI_EINVAL", function() return p.small end)
  t.raises("CAPFFI_EINVAL", function() p.small = 1 end)
  t.eq(q.x, 0, "unaffected")
end)

t.test("class_with_a_field_named_free", function()
  capffi.class("Pool", "{ free: i32, used: i32 }")
  local p = capffi.new("Pool", { free = 3 })
  t.eq(p.free, 3, "the field wins")
  capffi.free(p)
  t.raises("CAPFFI_EINVAL", capffi.free, p)
end)

t.test("token_classes_are_the_tokens", function()
  local other = capffi.token{ label = "other" }
  other:class("Pt", "{ a: f64, b: f64, c: f64 }")
  local mine = other:new("Pt", { c = 2.5 })
  t.eq(mine.c, 2.5, "the token's layout")
  t.raises("CAPFFI_ENOTFOUND", function() return mine.x end)
  local ctx_pt = capffi.new("Pt", { x = 1 })
  t.eq(ctx_pt.x, 1, "the context's layout")
  t.raises("CAPFFI_ENOTFOUND", function() return ctx_pt.c end)
end)

t.test("libc_qsort_with_a_typed_comparator", function()
  local c = tok:dlopen(capffi.resolve("libc.so.6"), {
    qsort = "(*[$1]i32, usize, usize, function) -> void",
  })
  local n = 1000
  local a = capffi.new("[" .. n .. "]i32")
  local x = 12345
  for i = 0, n - 1 do
    x = (x * 1103515245 + 12345) % 2147483648
    a[i] = x % 100000 - 50000
  end
  local kept
  local cmp <close> = tok:callback("(*i32, *i32) -> i32", function(p, q)
    kept = p
    local u, v = p[0], q[0]
    return u < v and -1 or (u > v and 1 or 0)
  end)
  c.qsort(a, n, 4, cmp)
  for i = 1, n - 1 do
    if a[i - 1] > a[i] then error("not sorted at " .. i) end
  end
  t.raises("CAPFFI_ECLOSED", function() return kept[0] end)
  t.raises("CAPFFI_EBOUNDS", c.qsort, a, n + 1, 4, cmp)
end)

t.test("callback_arguments_scalar_array_struct_and_nested", function()
  local c = tok:dlopen(capffi.resolve("libc.so.6"), {
    qsort = "(*[$1]i32, usize, usize, function) -> void",
    qsort_pt = { name = "qsort",
                 sig = "(*[$1]Pt, usize, usize, function) -> void" },
    qsort_shape = { name = "qsort",
                    sig = "(*[$1]Shape, usize, usize, function) -> void" },
  })
  -- a scalar argument: p[0] read and written, other indices refused
  local a = capffi.new("[4]i32", { [0] = 3, 1, 4, 1 })
  local kept, seen = nil, false
  local cmp <close> = tok:callback("(*i32, *i32) -> i32", function(p, q)
    if not seen then
      seen = true
      t.eq(capffi.classof(p), "i32", "classof an argument")
      t.eq(tostring(p), "capffi.instance(i32)", "tostring an argument")
      t.eq(#p, 1, "#p of a scalar argument")
      t.raises("CAPFFI_EBOUNDS", function() return p[1] end)
      t.raises("CAPFFI_EBOUNDS", function() return p[-1] end)
      t.raises("CAPFFI_EBOUNDS", function() p[1] = 0 end)
      t.raises("CAPFFI_ERANGE", function() p[0] = 2 ^ 40 end)
      t.raises("CAPFFI_ETYPE", function() p[0] = "x" end)
      t.raises("CAPFFI_EINVAL", capffi.free, p)
      t.raises("CAPFFI_EINVAL", p.free, p)
      local v = p[0]
      p[0] = v + 1 -- written through the argument
      t.eq(p[0], v + 1, "p[0] = v")
      p[0] = v
      kept = p
    end
    return p[0] - q[0]
  end)
  c.qsort(a, 4, 4, cmp)
  t.eq(a[0] .. a[1] .. a[2] .. a[3], "1134", "sorted")
  t.raises("CAPFFI_ECLOSED", function() return kept[0] end)
  local e = t.raises("CAPFFI_ECLOSED", function() kept[0] = 1 end)
  t.says(e, "callback")
  t.raises("CAPFFI_ECLOSED", function() return #kept end)
  t.eq(tostring(kept), "capffi.instance(i32, ended)", "tostring ended")
  t.eq(capffi.classof(kept), "i32", "classof ended")
  t.raises("CAPFFI_EINVAL", capffi.free, kept)

  -- an array argument: pairs sorted by their first element
  local pairs_ = capffi.new("[6]i32", { [0] = 5, 50, 2, 20, 9, 90 })
  local kept_pair
  local cmp2 <close> = tok:callback("(*[2]i32, *[2]i32) -> i32",
    function(p, q)
      t.eq(#p, 2, "#p of an array argument")
      t.raises("CAPFFI_EBOUNDS", function() return p[2] end)
      t.raises("CAPFFI_EBOUNDS", function() return p[-1] end)
      t.raises("CAPFFI_EBOUNDS", function() p[2] = 1 end)
      t.raises("CAPFFI_ENOTFOUND", function() return p.x end)
      p[1] = p[1] -- written through the argument
      kept_pair = q
      return p[0] - q[0]
    end)
  c.qsort(pairs_, 3, 8, cmp2)
  t.eq(table.concat({ pairs_[0], pairs_[1], pairs_[2], pairs_[3],
                      pairs_[4], pairs_[5] }, ","), "2,20,5,50,9,90",
       "pairs sorted")
  t.raises("CAPFFI_ECLOSED", function() return kept_pair[1] end)
  t.raises("CAPFFI_ECLOSED", function() kept_pair[0] = 1 end)

  -- a struct argument: named fields and parts go the general way
  local pts = capffi.new("[3]Pt", { [0] = { x = 3 }, { x = 1 }, { x = 2 } })
  local kept_pt
  local cmp3 <close> = tok:callback("(*Pt, *Pt) -> i32", function(p, q)
    t.eq(capffi.classof(p), "Pt", "classof")
    t.raises("CAPFFI_ETYPE", function() return p[0] end)
    t.raises("CAPFFI_ENOTFOUND", function() return p.nope end)
    p.y = p.x * 10
    kept_pt = p
    return p.x - q.x
  end)
  c.qsort_pt(pts, 3, tok:sizeof("Pt"), cmp3)
  t.eq(pts[0].x .. pts[1].x .. pts[2].x, "123", "sorted by x")
  t.eq(pts[2].y, 30, "written through a struct argument")
  t.raises("CAPFFI_ECLOSED", function() return kept_pt.x end)
  t.raises("CAPFFI_ECLOSED", function() kept_pt.y = 0 end)

  local shapes = capffi.new("[3]Shape")
  for i, x in ipairs({ 7, 5, 6 }) do shapes[i - 1].pts[1].x = x end
  local kept_part
  local cmp4 <close> = tok:callback("(*Shape, *Shape) -> i32",
    function(p, q)
      kept_part = p.pts[1]
      t.eq(tostring(kept_part), "capffi.instance(Shape.pts[1])", "a part")
      t.eq(capffi.classof(kept_part), "Shape", "classof a part")
      return p.pts[1].x - q["pts[1].x"]
    end)
  c.qsort_shape(shapes, 3, tok:sizeof("Shape"), cmp4)
  t.eq(shapes[0].pts[1].x .. shapes[1].pts[1].x .. shapes[2].pts[1].x,
       "567", "sorted by a nested field")
  t.raises("CAPFFI_ECLOSED", function() return kept_part.x end)

  -- the same callback called again from inside itself: each invocation's
  -- arguments live until it returns, those of the inner ones end first
  local depth, inner_kept = 0, {}
  local nested
  nested = tok:callback("(*i32, *i32) -> i32", function(p, q)
    depth = depth + 1
    if depth <= 20 then
      local b = capffi.new("[2]i32", { [0] = 2, 1 })
      c.qsort(b, 2, 4, nested)
      t.eq(b[0] .. b[1], "12", "inner sort at depth " .. depth)
      t.raises("CAPFFI_ECLOSED", function() return inner_kept[depth + 1] [0] end)
    end
    inner_kept[depth] = p
    local r = p[0] - q[0] -- still live after the inner sorts
    depth = depth - 1
    return r
  end)
  local b = capffi.new("[2]i32", { [0] = 9, 8 })
  c.qsort(b, 2, 4, nested)
  t.eq(b[0] .. b[1], "89", "outer sort")
  t.eq(nested:status().code, "CAPFFI_OK", "no invocation failed")
  t.raises("CAPFFI_ECLOSED", function() return inner_kept[1][0] end)
  nested:close()
  inner_kept = nil
  collectgarbage() -- kept arguments of a closed callback
  collectgarbage()
  t.raises("CAPFFI_ECLOSED", function() return kept[0] end)
  t.eq(tostring(kept), "capffi.instance(i32, ended)", "after the collector")
end)

t.test("callback_argument_kept_by_a_failing_handler", function()
  local c = tok:dlopen(capffi.resolve("libc.so.6"), {
    qsort = "(*[$1]i32, usize, usize, function) -> void",
  })
  local a = capffi.new("[2]i32", { [0] = 2, 1 })
  local kept
  local bad <close> = tok:callback("(*i32, *i32) -> i32", function(p)
    kept = p
    error("no")
  end)
  t.raises("CAPFFI_ECALLBACK", c.qsort, a, 2, 4, bad)
  t.raises("CAPFFI_ECLOSED", function() return kept[0] end)
end)

local function sqlite_lib(through)
  local ok, path = pcall(capffi.resolve, "libsqlite3.so.0")
  if not ok then return nil end
  through:class("sqlite3", "opaque")
  through:class("sqlite3_stmt", "opaque")
  return through:dlopen(path, {
    open = { name = "sqlite3_open",
             sig = "(cstring, out own *sqlite3 by sqlite3_close) -> i32" },
    exec = { name = "sqlite3_exec",
             sig = "(*sqlite3, cstring, function, ?*Ud, ?*Ud) -> i32" },
    prepare = { name = "sqlite3_prepare_v2",
                sig = "(*sqlite3, cstring, i32, " ..
                      "out own *sqlite3_stmt by sqlite3_finalize, ?*Ud) -> i32" },
    step = { name = "sqlite3_step", sig = "(*sqlite3_stmt) -> i32" },
    column_text = { name = "sqlite3_column_text",
                    sig = "(*sqlite3_stmt, i32) -> cstring" },
    bind_int = { name = "sqlite3_bind_int",
                 sig = "(*sqlite3_stmt, i32, i32) -> i32" },
  })
end

t.test("sqlite3_through_classes_only", function()
  -- a token without the pointer, read and write rights: safe mode
  local safe = capffi.token{ label = "sq", rights = { "dlopen", "callback" } }
  local sq = sqlite_lib(safe)
  if not sq then
    print("# skip: libsqlite3.so.0 is not installed")
    return
  end
  local rc, db = sq.open(":memory:")
  t.eq(rc, 0, "open")
  t.eq(capffi.classof(db), "sqlite3", "an owned opaque instance")
  t.raises("CAPFFI_ETYPE", function() return db.x end)
  t.eq(sq.exec(db, "create table t(a, b); insert into t values (1, 'x'), " ..
               "(2, 'y')", nil, nil, nil), 0, "exec")
  local seen = {}
  local cb <close> = safe:callback(ROW, function(_, n, vals, names)
    seen[#seen + 1] = names[1] .. "=" .. vals[1]
    return 0
  end)
  t.eq(sq.exec(db, "select a, b from t order by a", cb, nil, nil), 0, "rows")
  t.eq(table.concat(seen, " "), "b=x b=y", "through *[$1]cstring")
  local prc, st = sq.prepare(db, "select b from t where a = ?", -1, nil)
  t.eq(prc, 0, "prepare")
  t.eq(sq.bind_int(st, 1, 2), 0, "bind")
  t.eq(sq.step(st), 100, "SQLITE_ROW")
  t.eq(sq.column_text(st, 0), "y", "column")
  st:free()
  t.raises("CAPFFI_ETYPE", sq.step, db)
  db:free()
  t.eq(capffi.leaks(), 0, "both released")
  local e = t.raises("CAPFFI_EPERM", safe.dlopen, safe,
                     capffi.resolve("libsqlite3.so.0"),
                     { sqlite3_libversion = "() -> pointer" })
  t.says(e, "class")
end)

t.test("zlib_length_through_a_u64_instance", function()
  local ok, path = pcall(capffi.resolve, "libz.so.1")
  if not ok then
    print("# skip: libz.so.1 is not installed")
    return
  end
  -- zlib's destination has no count parameter: a fixed size says how
  -- much it must hold, and the length the script passes must not claim
  -- more (capffi cannot see through *destLen).
  local z = tok:dlopen(path, {
    compress = "(*[1024]u8, *u64, cstring, u64) -> i32",
    uncompress = "(*[1024]u8, *u64, *[$3]u8, u64) -> i32",
  })
  local text = string.rep("safe ffi ", 50)
  local out = capffi.new("[1024]u8")
  local len = capffi.new("u64", { [0] = 1024 })
  t.eq(z.compress(out, len, text, #text), 0, "compress")
  t.ok(len[0] < #text, "smaller")
  local back = capffi.new("[1024]u8")
  local blen = capffi.new("u64", { [0] = 1024 })
  t.eq(z.uncompress(back, blen, out, len[0]), 0, "uncompress")
  t.eq(blen[0], #text, "length back")
  local chars = {}
  for i = 0, blen[0] - 1 do chars[#chars + 1] = string.char(back[i]) end
  t.eq(table.concat(chars), text, "round trip")
end)

t.test("safe_mode_refuses_raw_pointers", function()
  local safe = capffi.token{ label = "nopointer",
                             rights = { "dlopen", "callback" } }
  local e = t.raises("CAPFFI_EPERM", safe.dlopen, safe, FIXTURE, {
    f = { name = "fx_rec_sum", sig = "(pointer) -> i64" } })
  t.says(e, "class")
  t.raises("CAPFFI_EPERM", safe.callback, safe, "(pointer) -> void",
           function() end)
  -- classes work there
  local lib = open_fx(safe)
  local r = lib.rec_new(3)
  t.eq(r.id, 3, "an instance through the safe token")
  r:free()
  -- a raw pointer field is refused in safe mode
  local n = safe:new("Node")
  t.raises("CAPFFI_EPERM", function() return n.next end)
  if not RUNNER then return end
  -- the runner's --safe: the whole context
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write([[
local capffi = require "capffi"
local ok, e = pcall(capffi.dlopen, ]] .. ("%q"):format(FIXTURE) .. [[, {
  f = { name = "fx_rec_sum", sig = "(pointer) -> i64" } })
print(e.code, e.message:find("class") ~= nil)
]])
  f:close()
  local p = io.popen(t.shq(RUNNER) .. " --safe --allow-ffi " .. t.shq(script))
  local out = p:read("a")
  p:close()
  os.remove(script)
  t.eq(out, "CAPFFI_EPERM\ttrue\n", "--safe refuses a raw pointer")
  local h = io.popen(t.shq(RUNNER) .. " --help")
  t.ok(h:read("a"):find("--safe", 1, true), "--help lists --safe")
  h:close()
end)

t.done()
