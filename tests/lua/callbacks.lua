-- callbacks.lua: Lua functions that native code calls, the owner loop, and
-- how failures reach the script (run with --allow-ffi).
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")

-- Marks hold the collector, so expectations see the test's own events.
local mark, expect = t.mark, t.expect_since
local tok = capffi.token{ label = "callbacks" }
local fx = tok:dlopen(FIXTURE, {
  fx_apply_i32 = "(function, i32) -> i32",
  fx_call_twice = "(function, i32) -> i32",
  fx_id_i32 = "(i32) -> i32",
  fx_apply_pair = "(function, { i32, i32 }, i32) -> { i32, i32 }",
  fx_call9 = "(function) -> f64",
  fx_thread_start = "(function, i32) -> pointer",
  fx_thread_done = "(pointer) -> i32",
  fx_thread_join = "(pointer) -> i64",
  fx_thread_call = "(function, i32) -> i64",
  -- the same function given the callback's raw code address, as native
  -- code that kept it would call it
  raw_apply = { name = "fx_apply_i32", sig = "(pointer, i32) -> i32" },
  raw_thread_start = { name = "fx_thread_start",
                       sig = "(pointer, i32) -> pointer" },
})

-- Run a fixture thread that calls cb(0) .. cb(n - 1); poll until it is
-- done; the sum of the results.
local function on_a_thread(cb, n, start)
  local th = (start or fx.fx_thread_start)(cb, n)
  while fx.fx_thread_done(th) == 0 do
    capffi.poll(50)
  end
  return fx.fx_thread_join(th)
end

t.test("qsort_with_a_lua_comparator", function()
  local libc = tok:dlopen("libc.so.6", {
    qsort = "(pointer, usize, usize, function) -> void",
  })
  local values = { 42, -7, 19, 0, 2147483647, -2147483648, 19, 3 }
  local b = capffi.buffer(string.pack(("i4"):rep(#values),
                                      table.unpack(values)))
  local base = tok:pointer_of(b)
  local v = tok:view(base, #b, "r")
  local at = capffi.address(base)
  local calls = 0
  local cmp = tok:callback("(pointer, pointer) -> i32", function(pa, pb)
    calls = calls + 1
    local x = v:get("i32", capffi.address(pa) - at)
    local y = v:get("i32", capffi.address(pb) - at)
    return x < y and -1 or (x > y and 1 or 0)
  end)
  libc.qsort(base, #values, 4, cmp)
  table.sort(values)
  t.eq(b:view("r"):copy(0, #b),
       string.pack(("i4"):rep(#values), table.unpack(values)), "sorted")
  t.ok(calls >= #values - 1, "the comparator ran")
  t.eq(cmp:status().code, "CAPFFI_OK", "no failure")
  cmp:close()
  v:free()
  b:unpin()
end)

t.test("sqlite3_exec_with_a_lua_row_callback", function()
  local sq = tok:dlopen("libsqlite3.so.0", {
    sqlite3_open = "(cstring, buffer) -> i32",
    sqlite3_exec = "(pointer, cstring, function, pointer, pointer) -> i32",
    sqlite3_close = "(pointer) -> i32",
  })
  local out = capffi.buffer(8)
  t.eq(sq.sqlite3_open(":memory:", out), 0, "open")
  local db = tok:view(out, "r"):get("pointer")
  -- char **values and char **names: arrays of C strings sqlite owns
  local function strings(p, n)
    local list, arr = {}, tok:view(p, n * 8, "r")
    for i = 0, n - 1 do
      local s = arr:get("pointer", i * 8)
      list[i + 1] = s and tok:view(s, "unbounded"):cstring() or "NULL"
    end
    return list
  end
  local rows = {}
  local row = tok:callback("(pointer, i32, pointer, pointer) -> i32",
    function(_, n, values, names)
      local v, k = strings(values, n), strings(names, n)
      rows[#rows + 1] = ("%s=%s;%s=%s"):format(k[1], v[1], k[2], v[2])
      return 0
    end, { result = 1 }) -- a failure makes sqlite3_exec abort
  t.eq(sq.sqlite3_exec(db,
    "create table t(k integer, v text);"
    .. "insert into t values (1, 'one'), (2, 'two'), (3, NULL);"
    .. "select k, v from t order by k;", row, nil, nil), 0, "SQLITE_OK")
  t.eq(table.concat(rows, " "), "k=1;v=one k=2;v=two k=3;v=NULL", "rows")
  -- returning non-zero asks sqlite to stop
  rows = {}
  local stop = tok:callback("(pointer, i32, pointer, pointer) -> i32",
    function() rows[#rows + 1] = true; return 1 end)
  t.eq(sq.sqlite3_exec(db, "select k from t", stop, nil, nil), 4,
       "SQLITE_ABORT")
  t.eq(#rows, 1, "one row, then stopped")
  t.eq(sq.sqlite3_close(db), 0, "close")
  row:close()
  stop:close()
end)

t.test("a_thread_safe_callback_from_a_fixture_thread", function()
  local on = {}
  local cb = tok:callback("(i32) -> i32", function(i)
    on[#on + 1] = i
    return i * i
  end, { threadsafe = true })
  t.eq(cb:ref(), 1, "ref")
  t.eq(capffi.keepalive(), 1, "keepalive counts it")
  t.eq(on_a_thread(cb, 10), 285, "0 + 1 + 4 + ... + 81")
  t.eq(#on, 10, "every invocation ran, through capffi.poll")
  t.eq(on[1] + on[10], 9, "in order")
  t.eq(cb:unref(), 0, "unref")
  t.eq(capffi.keepalive(), 0, "nothing to keep polling for")
  t.eq(cb:status().code, "CAPFFI_OK", "no failure")
  t.eq(capffi.poll(0), false, "nothing queued")
  t.eq(capffi.poll(), false, "the timeout defaults to 0")
  cb:ref()
  cb:close()
  t.eq(capffi.keepalive(), 0, "a closed callback keeps nothing alive")
  t.raises("CAPFFI_ECLOSED", cb.ref, cb)
end)

t.test("without_threadsafe_another_thread_fails_closed", function()
  local ran = 0
  local cb = tok:callback("(i32) -> i32", function() ran = ran + 1; return 1 end,
                          { result = -2 })
  t.eq(on_a_thread(cb, 3), -6, "each invocation got the default result")
  t.eq(ran, 0, "the handler never ran")
  local s = cb:status()
  t.eq(s.code, "CAPFFI_ETHREAD", "status")
  t.eq(s.failures, 3, "three failures")
  t.eq(cb:status().code, "CAPFFI_OK", "status() resets")
  t.raises("CAPFFI_EINVAL", cb.ref, cb) -- refs are for thread-safe ones
  cb:close()
end)

t.test("a_blocked_owner_and_a_timeout", function()
  -- fx_thread_call waits for its thread inside one native call: the
  -- owner cannot poll, so each invocation times out with the default.
  local ran = 0
  local cb = tok:callback("(i32) -> i32", function() ran = ran + 1; return 5 end,
                          { threadsafe = true, timeout_ms = 20, result = -1 })
  t.eq(fx.fx_thread_call(cb, 3), -3, "the defaults")
  t.eq(ran, 0, "not run")
  t.eq(cb:status().code, "CAPFFI_ETIMEDOUT", "status")
  cb:close()
end)

t.test("close_then_invoke_fails_closed", function()
  local ran = 0
  local cb = tok:callback("(i32) -> i32", function(x) ran = ran + 1; return x end,
                          { result = 99 })
  local code = cb:pointer()
  t.eq(type(code), "userdata", "a pointer")
  t.eq(fx.raw_apply(code, 4), 4, "live")
  local m = mark()
  cb:close()
  t.eq(tostring(cb), "capffi.callback(closed)", "tostring")
  t.eq(fx.raw_apply(code, 4), 99, "native code gets the default result")
  t.eq(ran, 1, "the handler did not run again")
  t.eq(cb:status().code, "CAPFFI_ECLOSED", "status")
  -- the callback's first refusal is an event at once
  t.ok(expect(m, { "cb.close ok (i32) -> i32",
                   "cb.invoke ECLOSED (i32) -> i32" },
              { ordered = true, exact = true }))
  local e = t.raises("CAPFFI_ECLOSED", fx.fx_apply_i32, cb, 1)
  t.says(e, "fx_apply_i32")
  cb:close() -- twice is fine
  t.eq(cb:pointer(), code, "the code stays mapped")
  -- on another thread too
  t.eq(on_a_thread(code, 2, fx.raw_thread_start), 198, "defaults")
end)

t.test("revoke_then_invoke_fails_closed", function()
  local child = tok:attenuate{ label = "cb-child", rights = { "callback" } }
  local ran = 0
  local cb = child:callback("(i32) -> i32",
                            function(x) ran = ran + 1; return x + 1 end,
                            { result = -5 })
  t.eq(fx.fx_apply_i32(cb, 1), 2, "live")
  local m = mark()
  child:revoke()
  t.eq(fx.raw_apply(cb:pointer(), 1), -5, "the default result")
  t.eq(ran, 1, "not run")
  t.eq(cb:status().code, "CAPFFI_EREVOKED", "status")
  t.ok(expect(m, { "token.revoke ok", "cb.invoke EREVOKED (i32) -> i32" },
              { ordered = true, exact = true }))
  t.raises("CAPFFI_EREVOKED", fx.fx_apply_i32, cb, 1)
  t.raises("CAPFFI_EREVOKED", child.callback, child, "() -> void",
           function() end)
  cb:close()
end)

t.test("a_handler_that_raises", function()
  local seen = {}
  local cb = tok:callback("(i32) -> i32", function(x)
    seen[#seen + 1] = x
    if x == 5 then error({ why = "five" }) end
    return x * 10
  end, { result = 7 })
  -- fx_call_twice is cb(cb(5)): the first invocation fails, native code
  -- gets 7 and calls cb(7); the call then raises the handler's error
  local m = mark()
  local e = t.raises("CAPFFI_ECALLBACK", fx.fx_call_twice, cb, 5)
  t.says(e, "fx_call_twice: a callback's handler failed")
  t.eq(type(e.cause), "table", "the handler's own error value")
  t.eq(e.cause.why, "five", "as raised")
  t.eq(e.failures, 1, "one failure")
  t.eq(table.concat(seen, ","), "5,7", "native code got the default")
  t.eq(cb:status().code, "CAPFFI_ECALLBACK", "status")
  t.eq(fx.fx_call_twice(cb, 1), 100, "the next call is clean")
  -- a string error, and every invocation failing
  local always = tok:callback("(i32) -> i32", function() error("nope") end)
  e = t.raises("CAPFFI_ECALLBACK", fx.fx_call_twice, always, 1)
  t.eq(e.failures, 2, "both invocations")
  t.ok(e.cause:find("nope", 1, true), "the first error")
  -- each failed invocation is audited; the clean ones are not
  t.ok(expect(m, { "cb.invoke ECALLBACK (i32) -> i32",
                   "cb.new ok (i32) -> i32",
                   "cb.invoke ECALLBACK (i32) -> i32",
                   "cb.invoke ECALLBACK (i32) -> i32" },
              { ordered = true, exact = true }))
  cb:close()
  always:close()
end)

t.test("bad_results_fail_the_invocation", function()
  local function returns(v, sig, opts)
    return tok:callback(sig or "(i32) -> i32", function() return v end, opts)
  end
  local e = t.raises("CAPFFI_ECALLBACK", fx.fx_apply_i32, returns("x"), 1)
  t.eq(e.cause.code, "CAPFFI_ETYPE", "a string for i32")
  e = t.raises("CAPFFI_ECALLBACK", fx.fx_apply_i32, returns(nil), 1)
  t.eq(e.cause.code, "CAPFFI_ETYPE", "nothing for i32")
  e = t.raises("CAPFFI_ECALLBACK", fx.fx_apply_i32, returns(1 << 31), 1)
  t.eq(e.cause.code, "CAPFFI_ERANGE", "2^31 for i32")
  t.says(e.cause, "i32")
  e = t.raises("CAPFFI_ECALLBACK", fx.fx_apply_i32, returns(0.5), 1)
  t.eq(e.cause.code, "CAPFFI_ERANGE", "0.5 for i32")
  t.eq(fx.fx_apply_i32(returns(1 << 31, nil, { wrap = true }), 1),
       -2147483648, "wrap")
  e = t.raises("CAPFFI_ECALLBACK", fx.fx_apply_pair,
               returns("abc", "({ i32, i32 }, i32) -> { i32, i32 }"),
               string.pack("i4i4", 1, 2), 3)
  t.eq(e.cause.code, "CAPFFI_ETYPE", "3 bytes for an 8-byte struct")
end)

t.test("arguments_and_results_of_every_kind", function()
  local pair = tok:callback("({ i32, i32 }, i32) -> { i32, i32 }",
    function(p, k)
      t.eq(type(p), "string", "a struct arrives as its bytes")
      local a, b = string.unpack("i4i4", p)
      return string.pack("i4i4", a * k, b * k)
    end)
  t.eq(fx.fx_apply_pair(pair, string.pack("i4i4", 3, -4), 5),
       string.pack("i4i4", 15, -20), "struct in, struct out")
  capffi.type("Mixed", "{ i: i64, d: f64 }")
  local got
  local nine = tok:callback(
    "(i8, u16, i32, i64, f32, f64, Mixed, bool, cstring) -> f64",
    function(...) got = table.pack(...); return 0.5 end)
  t.eq(fx.fx_call9(nine), 0.5, "the result")
  t.eq(got.n, 9, "nine arguments")
  t.eq(got[1], -5, "i8")
  t.eq(got[2], 60000, "u16")
  t.eq(got[3], -2000000000, "i32")
  t.eq(got[4], 1 << 40, "i64")
  t.eq(got[5], 1.5, "f32")
  t.eq(got[6], 2.25, "f64")
  t.eq(got[7], string.pack("i8d", -7, 0.125), "struct")
  t.eq(got[8], true, "bool")
  t.eq(got[9], "nine", "cstring")
  -- a bound function, a callback or nil for a function parameter
  t.eq(fx.fx_call_twice(fx.fx_id_i32, 6), 6, "a bound function")
  local e = t.raises("CAPFFI_ETYPE", fx.fx_call_twice, nine:pointer(), 1)
  t.says(e, "expected a callback, a bound function or nil")
  t.raises("CAPFFI_ETYPE", fx.fx_call_twice, print, 1)
  pair:close()
  nine:close()
end)

t.test("native_callback_native_recursion", function()
  local depth = 0
  local rec
  rec = tok:callback("(i32) -> i32", function(x)
    depth = math.max(depth, x)
    if x == 0 then return 0 end
    return x + fx.fx_apply_i32(rec, x - 1)
  end)
  t.eq(fx.fx_apply_i32(rec, 20), 210, "1 + 2 + ... + 20")
  t.eq(depth, 20, "nested twenty deep")
  -- an inner failure the handler catches does not fail the outer call
  local bad = tok:callback("(i32) -> i32", function() error("inner") end)
  local caught
  local outer = tok:callback("(i32) -> i32", function(x)
    local ok, e = pcall(fx.fx_apply_i32, bad, x)
    caught = not ok and e.code
    return x
  end)
  t.eq(fx.fx_apply_i32(outer, 3), 3, "the outer call is clean")
  t.eq(caught, "CAPFFI_ECALLBACK", "the inner call raised inside")
  rec:close()
  bad:close()
  outer:close()
end)

t.test("handlers_in_coroutines", function()
  local cb = tok:callback("(i32) -> i32", function(x) return x + 1 end)
  local co = coroutine.wrap(function(x)
    local y = fx.fx_apply_i32(cb, x)
    coroutine.yield(y)
    return fx.fx_apply_i32(cb, y)
  end)
  t.eq(co(1), 2, "called from a coroutine")
  t.eq(co(), 3, "and after it resumed")
  local yielder = tok:callback("(i32) -> i32", function(x)
    coroutine.yield(x)
    return x
  end)
  local e
  coroutine.wrap(function()
    e = select(2, pcall(fx.fx_apply_i32, yielder, 1))
  end)()
  t.eq(e.code, "CAPFFI_ECALLBACK", "a handler cannot yield across C")
  cb:close()
  yielder:close()
end)

t.test("making_callbacks_is_checked", function()
  local narrow = tok:attenuate{ rights = { "dlopen", "read" } }
  local m = mark()
  local e = t.raises("CAPFFI_EPERM", narrow.callback, narrow, "() -> void",
                     function() end)
  t.says(e, "callback")
  t.ok(expect(m, { "cb.new EPERM () -> void" }, { exact = true }))
  t.raises("CAPFFI_ESIG", tok.callback, tok, "(i32, ...: i32) -> i32",
           function() end)
  t.raises("CAPFFI_ESIG", tok.callback, tok, "(i32)", function() end)
  t.raises("CAPFFI_ETYPE", tok.callback, tok, "() -> void", "not a function")
  t.raises("CAPFFI_EINVAL", tok.callback, tok, "() -> void", function() end,
           { thread_safe = true })
  t.raises("CAPFFI_ETYPE", tok.callback, tok, "() -> void", function() end,
           { threadsafe = 1 })
  t.raises("CAPFFI_ERANGE", tok.callback, tok, "() -> void", function() end,
           { timeout_ms = -1 })
  t.raises("CAPFFI_EINVAL", tok.callback, tok, "() -> void", function() end,
           { result = 1 })
  t.raises("CAPFFI_ETYPE", tok.callback, tok, "() -> i32", function() end,
           { result = "1" })
  t.raises("CAPFFI_ERANGE", tok.callback, tok, "() -> u8", function() end,
           { result = 256 })
  t.raises("CAPFFI_ETYPE", tok.callback, tok, "() -> { i32, i32 }",
           function() end, { result = "abc" })
  local ok = tok:callback("() -> { i32, i32 }", function()
    return string.pack("i4i4", 1, 2)
  end, { result = string.pack("i4i4", 0, 0) })
  ok:close()
end)

t.test("to_be_closed_and_collected", function()
  local code
  do
    local cb <close> = tok:callback("(i32) -> i32", function(x) return x end,
                                    { result = 8 })
    code = cb:pointer()
    t.eq(fx.raw_apply(code, 3), 3, "live in its scope")
  end
  t.eq(fx.raw_apply(code, 3), 8, "closed with its variable")
  -- an open callback stays alive without references: native code may
  -- hold its code where the collector cannot see
  local hits = 0
  code = tok:callback("(i32) -> i32", function(x) hits = hits + 1; return x end)
                :pointer()
  collectgarbage()
  collectgarbage()
  t.eq(fx.raw_apply(code, 11), 11, "still live after a collection")
  t.eq(hits, 1, "ran")
  for i = 1, 200 do
    local cb = tok:callback("(i32) -> i32", function(x) return x + i end)
    t.eq(fx.fx_apply_i32(cb, 1), i + 1, "churn")
    cb:close()
    if i % 50 == 0 then collectgarbage() end
  end
end)

t.done()
