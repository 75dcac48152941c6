-- audit_expect.lua: the audit tools for tests (run with --allow-ffi): marks,
-- filters, reset, stable JSON Lines, call and invocation auditing, and
-- capffi.audit.expect with its report.
local t = require "harness"
local capffi = require "capffi"

local FIXTURE = assert(os.getenv("CAPFFI_FIXTURE"), "CAPFFI_FIXTURE unset")
local a = capffi.audit

local tok = capffi.token{ label = "expect" }
local fx = tok:dlopen(FIXTURE, {
  fx_add_i32 = "(i32, i32) -> i32",
  fx_id_i32 = "(i32) -> i32",
  fx_call_twice = "(function, i32) -> i32",
})

-- The events since mark as a list of "op status target" lines.
local function since(mark)
  local out = {}
  for _, ev in ipairs(a.events{ since = mark }) do
    out[#out + 1] = ev.op .. " " .. ev.status .. " " .. ev.target
  end
  return out
end

t.test("audit_mark_orders_events", function()
  local m1 = a.mark()
  t.eq(math.type(m1), "integer", "a mark is an integer")
  local other = capffi.token{ label = "marked" }
  local m2 = a.mark()
  t.ok(m2 > m1, "the mark moved with the event")
  t.eq(a.mark(), m2, "no event, same mark")
  other:revoke()
  local evs = a.events{ since = m2 }
  t.eq(#evs, 1, "one event since the second mark")
  t.eq(evs[1].op, "token.revoke", "op")
  t.eq(evs[1].seq, m2 + 1, "seq follows the mark")
  t.eq(#a.events{ since = m1 }, 2, "two since the first")
  t.eq(a.count{ since = m1 }, 2, "count agrees")
end)

t.test("audit_filter_fields", function()
  local m = a.mark()
  local other = capffi.token{ label = "filtered" }
  local e = t.raises("CAPFFI_ENOTFOUND", other.dlopen, other, FIXTURE,
                     { fx_no_such = "() -> void" })
  t.eq(a.count{ since = m, op = "lib.bind" }, 1, "op")
  -- token.new, lib.open, the refused lib.bind, lib.close
  t.eq(a.count{ since = m, status = "ok" }, 3, "status ok")
  t.eq(a.count{ since = m, status = "CAPFFI_ENOTFOUND" }, 1, "full name")
  t.eq(a.count{ since = m, status = "ENOTFOUND" }, 1, "bare name")
  t.eq(a.count{ since = m, status = e.status }, 1, "its number")
  t.eq(a.count{ since = m, status = 0 }, 3, "0 is ok")
  t.eq(a.count{ since = m, status = "CAPFFI_OK" }, 3, "CAPFFI_OK")
  t.eq(a.count{ since = m, status = "OK" }, 3, "OK")
  t.eq(a.count{ since = m, label = "filtered" }, 4, "label")
  t.eq(a.count{ since = m, label = "filtere" }, 0, "a label matches whole")
  t.eq(a.count{ since = m, target = "fx_no_*" }, 1, "target glob")
  t.eq(a.count{ since = m, reason = "none" }, 3, "reason none")
  local evs = a.events{ since = m, op = "lib.bind", status = "ENOTFOUND" }
  t.eq(#evs, 1, "events with a filter")
  t.eq(evs[1].target, "fx_no_such", "target")
  t.eq(a.count{ since = m, reason = evs[1].reason }, 1, "its reason")
  -- the positional form still works
  t.eq(a.count("lib.bind", "CAPFFI_ENOTFOUND", "fx_no_such"), 1,
       "positional")
  t.eq(a.count("lib.bind", "ENOTFOUND"), 1, "positional, bare name")
  other:revoke()
end)

t.test("audit_filter_errors", function()
  local e = t.raises("CAPFFI_EINVAL", a.count, { op = "lib.open", sinc = 1 })
  t.says(e, "sinc")
  e = t.raises("CAPFFI_EINVAL", a.events, { tagret = "x" })
  t.says(e, "tagret")
  e = t.raises("CAPFFI_EINVAL", a.jsonl, { stat = "ok" })
  t.says(e, "stat")
  t.says(t.raises("CAPFFI_EINVAL", a.count, { op = "lib.opne" }), "lib.opne")
  t.says(t.raises("CAPFFI_EINVAL", a.count, { status = "EWHAT" }), "EWHAT")
  t.says(t.raises("CAPFFI_EINVAL", a.count, { reason = "bored" }), "bored")
  t.raises("CAPFFI_ERANGE", a.count, { status = 5 })
  t.raises("CAPFFI_ERANGE", a.count, { since = -1 })
  t.raises("CAPFFI_ETYPE", a.count, { since = "1" })
  t.raises("CAPFFI_ETYPE", a.count, { label = 3 })
  t.raises("CAPFFI_ETYPE", a.events, "lib.open")
  t.raises("CAPFFI_EINVAL", a.count, { op = "lib.open" }, "ok")
end)

t.test("audit_reset_keeps_marks", function()
  capffi.token{ label = "before" }:revoke()
  local m = a.mark()
  t.ok(a.count() > 0, "events before the reset")
  a.reset()
  t.eq(a.count(), 0, "the recorder is empty")
  t.eq(#a.events(), 0, "no events")
  t.eq(a.jsonl(), "", "no JSON Lines")
  t.eq(a.dropped(), 0, "drops zeroed")
  t.eq(a.mark(), m, "the mark is where it was")
  local other = capffi.token{ label = "after" }
  local evs = a.events()
  t.eq(#evs, 1, "the new event")
  t.eq(evs[1].seq, m + 1, "seq went on")
  t.eq(a.count{ since = m, label = "after" }, 1, "since the old mark")
  t.ok(a.expect(m, { "token.new ok" }, { exact = true }), "expect after reset")
  other:revoke()
end)

t.test("audit_jsonl_stable", function()
  local m = a.mark()
  local other = capffi.token{ label = "stable" }
  local child = other:attenuate{ rights = { "callback" } }
  local cb = child:callback("(i32) -> i32", function(x) return x end)
  cb:close()
  local text = a.jsonl({ since = m }, { stable = true })
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  t.eq(#lines, 4, "token.new, token.attenuate, cb.new, cb.close")
  t.ok(lines[1]:find('^{"seq":1,"op":"token.new"'), lines[1])
  t.ok(lines[4]:find('^{"seq":4,"op":"cb.close"'), lines[4])
  t.ok(not text:find("time_ns", 1, true), "no time_ns")
  t.ok(lines[1]:find('"token":"t1","parent":""', 1, true), lines[1])
  t.ok(lines[2]:find('"token":"t2","parent":"t1"', 1, true), lines[2])
  t.ok(lines[3]:find('"token":"t2"', 1, true), lines[3])
  t.ok(lines[3]:find('"detail":"at @1"', 1, true), lines[3])
  t.ok(not text:find("0x%x%x%x%x"), "no address left")
  -- the same events again give the same text
  t.eq(a.jsonl({ since = m }, { stable = true }), text, "stable")
  -- without stable: times, real ids, real seq
  local plain = a.jsonl{ since = m }
  t.ok(plain:find('^{"seq":' .. (m + 1) .. ',"time_ns":%d+,'), plain)
  t.ok(plain:find('"token":"' .. other:info().id .. '"', 1, true), "real id")
  t.ok(a.jsonl():find('"time_ns":', 1, true), "jsonl() as before")
  t.ok(#a.jsonl() > #plain, "jsonl() has every event")
  t.ok(a.jsonl(nil, { stable = true }):find('^{"seq":1,'), "all, stable")
  t.says(t.raises("CAPFFI_EINVAL", a.jsonl, nil, { stabel = true }),
         "stabel")
  t.raises("CAPFFI_ETYPE", a.jsonl, nil, { stable = 1 })
  other:revoke()
end)

t.test("audit_expect_matches", function()
  local m = a.mark()
  local other = capffi.token{ label = "pattern" }
  local lib = other:dlopen(FIXTURE, { fx_id_i32 = "(i32) -> i32" })
  t.raises("CAPFFI_ENOTFOUND", other.dlopen, other, FIXTURE,
           { fx_absent = "(f32) -> f32" })
  local want = { "token.new ok", "lib.open ok *libcapffi_fixture.so",
                 "lib.bind ok fx_id_i32", "lib.open ok", "lib.bind fail fx_absent",
                 "lib.close ok" }
  t.eq(a.expect(m, want), true, "in any order")
  t.eq(a.expect(m, want, { ordered = true }), true, "ordered")
  t.eq(a.expect(m, want, { ordered = true, exact = true }), true, "exact")
  t.eq(a.expect(m, { "lib.bind ENOTFOUND fx_absent", "token.new ok" }), true,
       "unordered")
  t.eq(a.expect(m, { "lib.* * fx_absen?", "* CAPFFI_OK" }), true, "globs")
  t.eq(a.expect(a.mark(), {}, { exact = true }), true, "nothing happened")
  lib:close()
  other:revoke()
end)

t.test("audit_expect_reports_mismatch", function()
  local m = a.mark()
  local other = capffi.token{ label = "mismatch" }
  local ok, report = a.expect(m, { "token.new ok", "lib.bind ok cos" },
                              { ordered = true })
  t.eq(ok, false, "a missing event")
  t.eq(type(report), "string", "the report")
  t.ok(report:find("1 of 2 patterns matched", 1, true), report)
  t.ok(report:find("\n  - [2] lib.bind ok cos", 1, true), report)
  t.ok(report:find("= " .. (m + 1) .. " token.new ok", 1, true), report)
  -- order
  other:revoke()
  ok, report = a.expect(m, { "token.revoke ok", "token.new ok" },
                        { ordered = true })
  t.eq(ok, false, "out of order")
  t.ok(report:find("- [2] token.new ok", 1, true), report)
  t.eq(a.expect(m, { "token.revoke ok", "token.new ok" }), true, "unordered")
  -- exact: an unexpected event
  ok, report = a.expect(m, { "token.new ok" }, { exact = true })
  t.eq(ok, false, "an unexpected event")
  t.ok(report:find("+ " .. (m + 2) .. " token.revoke ok", 1, true), report)
  -- a pattern that matches nothing that happened
  ok = a.expect(m, { "token.new EPERM" })
  t.eq(ok, false, "status mismatch")
  -- the idiom: assert raises the report
  local pok, err = pcall(function()
    assert(a.expect(m, { "lib.open ok" }))
  end)
  t.eq(pok, false, "assert raised")
  t.ok(tostring(err):find("- [1] lib.open ok", 1, true), tostring(err))
end)

t.test("audit_expect_bad_pattern", function()
  local m = a.mark()
  local e = t.raises("CAPFFI_EINVAL", a.expect, m,
                     { "token.new ok", "lib.open maybe x" })
  t.says(e, "audit.expect: pattern 2 ('lib.open maybe x'), byte 9")
  e = t.raises("CAPFFI_EINVAL", a.expect, m, { "lib.nope ok" })
  t.says(e, "pattern 1 ('lib.nope ok'), byte 0")
  e = t.raises("CAPFFI_EINVAL", a.expect, m, { "lib.open" })
  t.says(e, "byte 8")
  t.says(t.raises("CAPFFI_ETYPE", a.expect, m, { "token.new ok", 7 }),
         "pattern 2")
  t.raises("CAPFFI_ETYPE", a.expect, m, "token.new ok")
  t.raises("CAPFFI_ERANGE", a.expect, -1, {})
  t.raises("CAPFFI_ETYPE", a.expect, nil, {})
  t.says(t.raises("CAPFFI_EINVAL", a.expect, m, {}, { exactly = true }),
         "exactly")
end)

t.test("audit_calls_off_by_default", function()
  local m = a.mark()
  for i = 1, 5 do t.eq(fx.fx_add_i32(i, 1), i + 1, "call") end
  t.eq(a.count{ since = m, op = "fn.call" }, 0, "no fn.call event")
  t.eq(a.count{ since = m, status = "ok" }, 0, "no success at all")
  t.ok(a.expect(m, {}, { exact = true }), "nothing in the trail")
end)

t.test("audit_fn_switch", function()
  local m = a.mark()
  a.fn(fx.fx_add_i32, true)
  for i = 1, 3 do t.eq(fx.fx_add_i32(i, i), 2 * i, "call") end
  t.eq(fx.fx_id_i32(4), 4, "another function")
  local evs = a.events{ since = m }
  t.eq(#evs, 3, "one event per call of the audited function")
  for _, ev in ipairs(evs) do
    t.eq(ev.op, "fn.call", "op")
    t.eq(ev.status, "CAPFFI_OK", "status")
    t.eq(ev.target, "fx_add_i32", "target: the symbol")
    t.eq(ev.label, "expect", "the token's label")
    t.eq(ev.detail, "returned", "detail")
  end
  t.ok(a.expect(m, { "fn.call ok fx_add_i32", "fn.call ok fx_add_i32",
                     "fn.call ok fx_add_i32" }, { exact = true }), "expect")
  -- a call capffi refuses is audited too
  local m2 = a.mark()
  t.raises("CAPFFI_ERANGE", fx.fx_add_i32, 1 << 40, 1)
  t.eq(a.count{ since = m2, op = "fn.call", status = "ERANGE",
                target = "fx_add_i32" }, 1, "the failed call")
  local m3 = a.mark()
  a.fn(fx.fx_add_i32, false)
  fx.fx_add_i32(1, 1)
  t.eq(a.count{ since = m3 }, 0, "off again")
  a.fn(fx.fx_add_i32) -- on by default
  fx.fx_add_i32(1, 1)
  t.eq(a.count{ since = m3, op = "fn.call" }, 1, "on without a boolean")
  a.fn(fx.fx_add_i32, false)
  t.says(t.raises("CAPFFI_ETYPE", a.fn, print), "bound function")
  t.raises("CAPFFI_ETYPE", a.fn, function() end)
  t.raises("CAPFFI_ETYPE", a.fn, fx.fx_add_i32, "yes")
end)

t.test("audit_cb_switch", function()
  local sig = "(i32) -> i32"
  local cb = tok:callback(sig, function(x) return x * 2 end)
  local m = a.mark()
  t.eq(fx.fx_call_twice(cb, 5), 20, "native code called it twice")
  t.eq(a.count{ since = m }, 0, "not audited by default")
  a.cb(cb, true)
  m = a.mark()
  t.eq(fx.fx_call_twice(cb, 3), 12, "called twice again")
  local evs = a.events{ since = m, op = "cb.invoke" }
  t.eq(#evs, 2, "one cb.invoke per invocation")
  for _, ev in ipairs(evs) do
    t.eq(ev.status, "CAPFFI_OK", "status")
    t.eq(ev.target, sig, "target: the signature")
    t.ok(ev.detail:find("^at 0x%x+$"), ev.detail)
  end
  t.ok(a.expect(m, { "cb.invoke ok", "cb.invoke ok" }, { exact = true }),
       "expect")
  a.cb(cb, false)
  m = a.mark()
  fx.fx_call_twice(cb, 1)
  t.eq(a.count{ since = m }, 0, "off again")
  cb:close()
  a.cb(cb, true) -- a closed callback may be switched; it is refused anyway
  t.says(t.raises("CAPFFI_ETYPE", a.cb, fx.fx_add_i32), "callback")
end)

t.test("audit_calls_context", function()
  local cb = tok:callback("(i32) -> i32", function(x) return x + 1 end)
  local m = a.mark()
  a.calls("calls")
  fx.fx_id_i32(1)
  t.eq(fx.fx_call_twice(cb, 1), 3, "call")
  t.eq(a.count{ since = m, op = "fn.call", status = "ok" }, 2, "both calls")
  t.eq(a.count{ since = m, op = "cb.invoke" }, 0, "invocations not")
  t.ok(a.expect(m, { "fn.call ok fx_id_i32", "fn.call ok fx_call_twice" },
                { ordered = true, exact = true }), "expect")
  m = a.mark()
  a.calls("invokes")
  t.eq(fx.fx_call_twice(cb, 1), 3, "call")
  t.ok(a.expect(m, { "cb.invoke ok", "cb.invoke ok" }, { exact = true }),
       "only invocations")
  m = a.mark()
  a.calls("all")
  t.eq(fx.fx_call_twice(cb, 1), 3, "call")
  -- the invocations finish before the call that made them returns
  t.ok(a.expect(m, { "cb.invoke ok", "cb.invoke ok",
                     "fn.call ok fx_call_twice" },
                { ordered = true, exact = true }), "calls and invocations")
  m = a.mark()
  a.calls(false)
  fx.fx_id_i32(1)
  fx.fx_call_twice(cb, 1)
  t.eq(a.count{ since = m }, 0, "off with false")
  a.calls("calls")
  a.calls(nil)
  fx.fx_id_i32(1)
  t.eq(a.count{ since = m }, 0, "off with nil")
  -- a function's own switch outlives the context's
  a.fn(fx.fx_id_i32, true)
  a.calls("all")
  a.calls(false)
  fx.fx_id_i32(1)
  t.eq(a.count{ since = m, op = "fn.call" }, 1, "its own switch")
  a.fn(fx.fx_id_i32, false)
  t.says(t.raises("CAPFFI_EINVAL", a.calls, "everything"), "everything")
  t.raises("CAPFFI_ETYPE", a.calls, true)
  t.raises("CAPFFI_ETYPE", a.calls, 1)
  cb:close()
end)

t.test("audit_tools_grant_nothing", function()
  local other = capffi.token{ label = "granted", rights = { "callback" } }
  local m = a.mark()
  a.calls("all")
  a.reset()
  t.raises("CAPFFI_EPERM", other.dlopen, other, FIXTURE,
           { fx_id_i32 = "(i32) -> i32" })
  a.calls(false)
  t.ok(a.expect(m, { "lib.open EPERM" }), "still refused, and audited")
  other:revoke()
end)

t.done()
