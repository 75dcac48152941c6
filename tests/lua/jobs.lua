-- jobs.lua: nonblocking calls from Lua (f:async, job:wait, job:await with
-- capffi.poll), lent buffers, cancel and revoke (run with --allow-ffi).
--
-- Ordering: the context's pool has at most 8 workers (capffi_options
-- .workers 0: the cores, at most 8) and takes jobs first in, first out, so
-- a job submitted after 8 jobs blocked on the fixture's gate cannot start
-- before the gate opens. Every wait has a bound.
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local tok = capffi.token{ label = "jobs" }
capffi.type("Outer", "{ tag: i8, in: { s: i16, d: f64 }, tail: i32 }")
local fx = tok:dlopen(FIXTURE, {
  fx_nop = "() -> void",
  fx_add_i32 = "(i32, i32) -> i32",
  fx_add_i64 = "(i64, i64) -> i64",
  fx_add_u64 = "(u64, u64) -> u64",
  fx_id_bool = "(bool) -> bool",
  fx_id_f32 = "(f32) -> f32",
  fx_id_f64 = "(f64) -> f64",
  fx_id_u8 = "(u8) -> u8",
  fx_null = "() -> pointer",
  fx_greeting = "() -> cstring",
  fx_strlen = "(cstring) -> usize",
  buf_strlen = { name = "fx_strlen", sig = "(buffer) -> usize" },
  fx_pair_make = "(i32, i32) -> { a: i32, b: i32 }",
  fx_pair_sum = "({ a: i32, b: i32 }) -> i32",
  fx_outer_make = { sig = "(i8, i16, f64, i32) -> Outer", struct = "value" },
  fx_big_make = { sig = "(i64, i64, i64) -> { a: i64, b: i64, c: i64 }",
                  struct = "buffer" },
  fx_set_errno = { sig = "(i32) -> i32", errno = true },
  fx_apply_i32 = "(function, i32) -> i32",
  fx_fill_after = "(function, buffer, usize, u8) -> void",
  fx_gate_wait = "(i32, i32) -> i32",
  fx_gate_open = "() -> void",
  fx_gate_close = "() -> void",
  fx_gate_inside = "() -> i32",
  add_async = { name = "fx_add_i32", sig = "(i32, i32) -> i32",
                async = true },
})

local GATE_MS = 20000 -- how long a gate job waits at most
local WORKERS_MAX = 8

-- Poll until cond() holds, at most ms milliseconds; whether it held.
local function poll_until(cond, ms)
  local deadline = os.time() + ms // 1000 + 1
  while not cond() do
    if os.time() > deadline then return false end
    capffi.poll(20)
  end
  return true
end

-- Block every worker: WORKERS_MAX gate jobs, the first of them running.
local function block_pool()
  local gates = {}
  for i = 1, WORKERS_MAX do
    gates[i] = fx.fx_gate_wait:async(i, GATE_MS)
  end
  t.ok(poll_until(function() return fx.fx_gate_inside() >= 1 end, 5000),
       "a gate job started")
  return gates
end

-- Open the gate, check that every gate job passed it, close it again.
local function unblock_pool(gates)
  fx.fx_gate_open()
  for i, g in ipairs(gates) do
    t.eq(g:wait(GATE_MS), i, "gate job " .. i)
  end
  fx.fx_gate_close()
end

t.test("results of every kind, converted as a synchronous call's", function()
  t.eq(fx.fx_add_i32:async(40, 2):wait(), 42, "i32")
  t.eq(fx.fx_add_i64:async(1 << 40, 1):wait(), (1 << 40) + 1, "i64")
  t.eq(fx.fx_add_u64:async(-1, 0):wait(), -1, "u64 2^64 - 1")
  t.eq(fx.fx_id_bool:async(true):wait(), true, "bool")
  t.eq(fx.fx_id_f32:async(0.5):wait(), 0.5, "f32")
  t.eq(math.type(fx.fx_id_f64:async(2):wait()), "float", "f64 is a float")
  t.eq(fx.fx_null:async():wait(), nil, "NULL pointer")
  t.eq(fx.fx_greeting:async():wait(), "hello from fixture", "cstring")
  t.eq(select("#", fx.fx_nop:async():wait()), 0, "void: nothing")
  -- a cstring argument is copied at submission
  local s = "abcdef"
  local j = fx.fx_strlen:async(s)
  s = nil
  collectgarbage()
  t.eq(j:wait(), 6, "cstring argument")
  -- struct argument and the three struct results
  t.eq(fx.fx_pair_sum:async(string.pack("i4i4", 40, 2)):wait(), 42,
       "struct argument")
  local p = fx.fx_pair_make:async(3, 4):wait()
  t.eq(#p, 8, "struct as a string")
  t.eq(select(2, string.unpack("i4i4", p)), 4, "its field b")
  local o = fx.fx_outer_make:async(1, 2, 0.5, 4):wait()
  t.eq(o["in.d"], 0.5, "struct value")
  t.eq(o.tail, 4, "struct value field")
  local big = fx.fx_big_make:async(1, 2, 3):wait()
  t.eq(getmetatable(big), "capffi.buffer", "struct as a buffer")
  t.eq(big:view():get("i64", 16), 3, "its field c")
end)

t.test("errno comes back as from a synchronous call", function()
  local j = fx.fx_set_errno:async(34)
  t.eq(j:wait(), -1, "result")
  t.eq(capffi.errno(), 34, "errno")
end)

t.test("async = true makes every call a job", function()
  local j = fx.add_async(20, 22)
  t.eq(getmetatable(j), "capffi.job", "a job")
  t.eq(j:wait(1000), 42, "its result")
  t.eq(fx.add_async:async(1, 2):wait(), 3, ":async too")
  local e = t.raises("CAPFFI_EINVAL", fx.add_async, 1)
  t.says(e, "expected 2 arguments, got 1")
  t.raises("CAPFFI_ERANGE", fx.add_async, 1, 1 << 40)
end)

t.test("arguments are checked as for a synchronous call", function()
  local e = t.raises("CAPFFI_EINVAL", fx.fx_add_i32.async, fx.fx_add_i32, 1)
  t.says(e, "fx_add_i32: expected 2 arguments, got 1")
  e = t.raises("CAPFFI_ETYPE", function() return fx.fx_add_i32:async(1, "2") end)
  t.says(e, "argument 2 (i32)")
  t.raises("CAPFFI_ERANGE", function() return fx.fx_id_u8:async(256) end)
  e = t.raises("CAPFFI_EINVAL", function() return fx.fx_strlen:async("a\0b") end)
  t.says(e, "argument 1 (cstring)")
  -- only bound functions have :async
  local ok, err = pcall(function() return print:async() end)
  t.ok(not ok and tostring(err):find("attempt to index a function value"),
       "print:async raises")
  ok, err = pcall(function() return fx.fx_nop.other end)
  t.ok(not ok and tostring(err):find("attempt to index a function value"),
       "other keys raise")
  t.raises("CAPFFI_ETYPE", fx.fx_nop.async, print)
end)

t.test("a lent buffer raises CAPFFI_EBUSY until the job ends", function()
  local buf = capffi.buffer(8)
  local inside = {}
  -- native code calls back (from the worker, through the owner loop) and
  -- then fills the buffer: while the handler runs, the job holds it
  local cb <close> = tok:callback("() -> void", function()
    inside.tostring = select(2, pcall(buf.tostring, buf))
    inside.view = select(2, pcall(function() return buf:view():get("u8") end))
    inside.call = select(2, pcall(fx.buf_strlen, buf))
    inside.submit = select(2, pcall(fx.buf_strlen.async, fx.buf_strlen, buf))
    inside.str = tostring(buf)
  end, { threadsafe = true })
  local j = fx.fx_fill_after:async(cb, buf, 8, 0x41)
  -- lent from the submission on, whether it runs yet or not
  local e = t.raises("CAPFFI_EBUSY", buf.tostring, buf)
  t.says(e, "lent to a nonblocking call")
  t.raises("CAPFFI_EBUSY", buf.bytes, buf, 1)
  t.raises("CAPFFI_EBUSY", buf.write, buf, 1, "x")
  t.raises("CAPFFI_EBUSY", function() return #buf end)
  t.eq(tostring(buf), "capffi.buffer(lent)", "tostring says so")
  t.raises("CAPFFI_EBUSY", fx.buf_strlen, buf)
  t.raises("CAPFFI_EBUSY", function() return fx.buf_strlen:async(buf) end)
  t.eq(select("#", j:wait(5000)), 0, "void result")
  for _, k in ipairs{ "tostring", "view", "call", "submit" } do
    t.eq(type(inside[k]) == "table" and inside[k].code, "CAPFFI_EBUSY",
         "in the callback: " .. k)
  end
  t.eq(inside.str, "capffi.buffer(lent)", "in the callback: tostring")
  t.eq(buf:tostring(), ("A"):rep(8), "usable after, with what native code wrote")
  t.eq(fx.buf_strlen:async(capffi.buffer("abc\0")):wait(), 3,
       "a buffer argument")
end)

t.test("a buffer lent twice in one call, or to two jobs, is refused", function()
  local b = capffi.buffer("x\0")
  local gates = block_pool()
  local j = fx.buf_strlen:async(b)
  local e = t.raises("CAPFFI_EBUSY", function() return fx.buf_strlen:async(b) end)
  t.says(e, "argument 1")
  unblock_pool(gates)
  t.eq(j:wait(5000), 1, "the first job ran")
  t.eq(fx.buf_strlen:async(b):wait(5000), 1, "lent again after")
end)

t.test("a pending job keeps its function and buffers from the collector", function()
  local weak = setmetatable({}, { __mode = "v" })
  local gates = block_pool()
  do
    local b = capffi.buffer("abcd\0")
    weak.buf = b
    weak.job = fx.buf_strlen:async(b)
  end
  collectgarbage()
  collectgarbage()
  t.ok(weak.buf ~= nil, "the lent buffer survives a collection")
  t.ok(weak.job ~= nil, "so does the dropped job")
  unblock_pool(gates)
  t.ok(poll_until(function() return weak.job:done() end, 5000), "it ended")
  t.eq(weak.job:wait(0), 4, "its result")
  collectgarbage()
  collectgarbage()
  t.eq(weak.buf, nil, "collected once the job ended")
end)

t.test("cancel: a queued job ends canceled, a running one finishes", function()
  local gates = block_pool()
  local b = capffi.buffer("q\0")
  local j = fx.buf_strlen:async(b)
  t.eq(j:cancel(), true, "queued: canceled")
  t.eq(j:done(), true, "ended at once")
  t.eq(b:tostring(), "q\0", "its buffer is back at once")
  local e = t.raises("CAPFFI_ECANCELED", j.wait, j)
  t.says(e, "buf_strlen")
  t.eq(gates[1]:cancel(), false, "running: not canceled")
  t.eq(j:cancel(), false, "ended: nothing to cancel")
  unblock_pool(gates)
  t.ok(t.audited("job.cancel", "CAPFFI_OK") >= 1, "audited")
end)

t.test("revoke: a job that has not started ends CAPFFI_EREVOKED", function()
  local rtok = capffi.token{ label = "jobs-revoked" }
  local rlib = rtok:dlopen(FIXTURE, { fx_add_i32 = "(i32, i32) -> i32" })
  local gates = block_pool()
  local j = rlib.fx_add_i32:async(1, 2)
  rtok:revoke()
  unblock_pool(gates)
  t.raises("CAPFFI_EREVOKED", j.wait, j, 5000)
  local e = t.raises("CAPFFI_EREVOKED",
                     function() return rlib.fx_add_i32:async(1, 2) end)
  t.says(e, "fx_add_i32")
  t.ok(t.audited("job.submit", "CAPFFI_EREVOKED") >= 1, "refusal audited")
end)

t.test("a closed library refuses submissions", function()
  local lib = tok:dlopen(FIXTURE, { fx_nop = "() -> void" })
  local nop = lib.fx_nop
  lib:close()
  t.raises("CAPFFI_ECLOSED", function() return nop:async() end)
end)

t.test("a job's native code calls a thread-safe callback", function()
  local cb <close> = tok:callback("(i32) -> i32", function(x) return x * 3 end,
                                  { threadsafe = true })
  t.eq(fx.fx_apply_i32:async(cb, 14):wait(5000), 42, "served while waiting")
  local failing <close> = tok:callback("(i32) -> i32", function() error("no") end,
                                       { threadsafe = true, result = -1 })
  local j = fx.fx_apply_i32:async(failing, 1)
  local e = t.raises("CAPFFI_ECALLBACK", j.wait, j, 5000)
  t.ok(tostring(e.cause):find("no"), "the handler's error is the cause")
end)

t.test("a callback cannot close the job job:wait is waiting for", function()
  local waited
  local closer <close> = tok:callback("(i32) -> i32", function(x)
    waited:close() -- refused: the wait would take a released job's result
    return x
  end, { threadsafe = true, result = -1 })
  waited = fx.fx_apply_i32:async(closer, 5)
  local e = t.raises("CAPFFI_ECALLBACK", waited.wait, waited, 5000)
  t.eq(e.cause.code, "CAPFFI_EBUSY", "the close was refused")
  t.ok(tostring(waited):find("closed") == nil, "the job is still open")
  t.raises("CAPFFI_EINVAL", waited.wait, waited, 0) -- its result was taken
  waited:close()
  t.ok(tostring(waited):find("closed"), "closed after the wait")
end)

t.test("a wait inside a callback run by job:wait guards the job as well",
       function()
  -- K's native code calls back while J waits at the gate (or, with one
  -- worker, in the queue): J cannot end before the callback opens it.
  fx.fx_gate_close()
  local nested, closed, awaited, J
  local cb <close> = tok:callback("(i32) -> i32", function(x)
    nested = select(2, pcall(J.wait, J, 0)) -- times out inside the outer
    closed = select(2, pcall(J.close, J))   -- still refused after it
    local co = coroutine.create(function() return J:await() end)
    awaited = select(2, coroutine.resume(co)) -- the wait takes the result
    fx.fx_gate_open()
    return x
  end, { threadsafe = true, result = -1 })
  local K = fx.fx_apply_i32:async(cb, 5)
  J = fx.fx_gate_wait:async(7, GATE_MS)
  t.eq(J:wait(GATE_MS), 7, "the outer wait takes J's result")
  fx.fx_gate_close()
  t.eq(K:wait(5000), 5, "the callback returned")
  t.eq(nested.code, "CAPFFI_ETIMEDOUT", "the nested wait timed out")
  t.eq(closed.code, "CAPFFI_EBUSY", "closing J during the wait is refused")
  t.eq(awaited.code, "CAPFFI_EBUSY", "awaiting J during the wait is refused")
  J:close()
  t.ok(tostring(J):find("closed"), "closed once the wait has returned")
end)

t.test("coroutines: many jobs at once, resumed by capffi.poll", function()
  local N = 64
  local results, finished = {}, 0
  for i = 1, N do
    local co = coroutine.wrap(function()
      local g = fx.fx_gate_wait:async(i, GATE_MS):await()
      local s = fx.fx_add_i32:async(g, 1000):await()
      results[i] = s
      finished = finished + 1
    end)
    co() -- runs to its first await and yields
  end
  t.eq(finished, 0, "every coroutine waits")
  t.ok(poll_until(function() return fx.fx_gate_inside() >= 1 end, 5000),
       "gate jobs run")
  t.eq(finished, 0, "none passed the gate")
  t.eq(capffi.keepalive(), N, "the pending jobs keep the loop going")
  fx.fx_gate_open()
  t.ok(poll_until(function() return finished == N end, 10000), "all resumed")
  fx.fx_gate_close()
  for i = 1, N do
    t.eq(results[i], i + 1000, "coroutine " .. i)
  end
  t.eq(capffi.poll(0), false, "nothing left")
  t.eq(capffi.keepalive(), 0, "nothing keeps the loop going")
end)

t.test("coroutines: errors surface, cancel and close resume", function()
  local co = coroutine.create(function()
    fx.fx_add_i32:async(1, 1):await()
    error({ mine = true })
  end)
  assert(coroutine.resume(co))
  local ok, err
  t.ok(poll_until(function()
    ok, err = pcall(capffi.poll, 10)
    return not ok
  end, 5000), "capffi.poll raised")
  t.eq(type(err) == "table" and err.mine, true, "the coroutine's own error")
  t.eq(coroutine.status(co), "dead", "the coroutine is dead")

  local gates = block_pool()
  local got = {}
  local queued = fx.fx_add_i32:async(1, 2)
  local closed = fx.fx_add_i32:async(3, 4)
  for name, j in pairs{ queued = queued, closed = closed } do
    coroutine.wrap(function()
      local ok2, e = pcall(j.await, j)
      got[name] = ok2 and "ok" or e.code
    end)()
  end
  local e = t.raises("CAPFFI_EBUSY", queued.wait, queued, 0)
  t.says(e, "a coroutine awaits this job")
  t.raises("CAPFFI_EBUSY", function()
    return coroutine.wrap(function() return queued:await() end)()
  end)
  t.eq(queued:cancel(), true, "canceled")
  closed:close()
  t.ok(poll_until(function() return got.queued and got.closed end, 5000),
       "both resumed")
  t.eq(got.queued, "CAPFFI_ECANCELED", "canceled while awaited")
  t.eq(got.closed, "CAPFFI_ECLOSED", "closed while awaited")
  unblock_pool(gates)
end)

t.test("a job waited on with a timeout can still be awaited", function()
  local gates = block_pool()
  local j = fx.fx_add_i32:async(5, 6)
  local e = t.raises("CAPFFI_ETIMEDOUT", j.wait, j, 0)
  t.says(e, "has not ended")
  t.raises("CAPFFI_ETIMEDOUT", j.wait, j, 30)
  local got
  coroutine.wrap(function() got = j:await() end)()
  unblock_pool(gates)
  t.ok(poll_until(function() return got ~= nil end, 5000), "resumed")
  t.eq(got, 11, "its result")
end)

t.test("bad input: wait twice, closed jobs, await outside a coroutine", function()
  local j = fx.fx_add_i32:async(1, 2)
  t.eq(j:wait(5000), 3, "first wait")
  local e = t.raises("CAPFFI_EINVAL", j.wait, j)
  t.says(e, "already taken")
  t.raises("CAPFFI_EINVAL", j.await, j)
  j:close()
  j:close() -- twice is fine
  t.raises("CAPFFI_ECLOSED", j.wait, j)
  t.raises("CAPFFI_ECLOSED", j.cancel, j)
  t.eq(tostring(j), "capffi.job(fx_add_i32, closed)", "tostring")
  local k = fx.fx_add_i32:async(1, 2)
  e = t.raises("CAPFFI_EINVAL", k.await, k)
  t.says(e, "not in a coroutine")
  t.raises("CAPFFI_ETYPE", k.wait, k, "soon")
  t.raises("CAPFFI_ERANGE", k.wait, k, 1 << 40)
  t.raises("CAPFFI_ETYPE", k.wait, capffi.buffer(1))
  t.eq(k:wait(5000), 3, "still fine")
  do
    local c <close> = fx.fx_add_i32:async(1, 2)
  end -- closed pending or not: no error, nothing leaks
  collectgarbage()
end)

t.test("examples/jobs.lua runs", function()
  local path = assert(os.getenv("CAPFFI_JOBS_EXAMPLE"),
                      "CAPFFI_JOBS_EXAMPLE unset")
  local out = {}
  local env = setmetatable({ print = function(...)
    out[#out + 1] = table.concat({ ... }, "\t")
  end }, { __index = _G })
  assert(loadfile(path, "t", env))()
  t.eq(#out, 5, "a line per buffer and a summary")
  t.eq(out[#out], "4 buffers, all checksums match", "summary")
end)

-- A job still running when the script ends: the context waits for it.
fx.fx_gate_wait:async(0, 100)

t.done()
