-- cork.scope: LIFO cleanups, all of them, errors reported, original error wins.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")

do -- LIFO order and arguments, err is nil on normal exit
  local order = {}
  do
    local s <close> = cork.scope("t")
    s:defer(function(a, b, err) order[#order + 1] = a .. b .. tostring(err) end, "a", "1")
    s:defer(function(err) order[#order + 1] = "second:" .. tostring(err) end)
  end
  T.same(order, { "second:nil", "a1nil" }, "cleanups run last in, first out, with args then err")
end

do -- error path: closers receive the error, all run, original error wins
  local seen = {}
  local ok, err = pcall(function()
    local s <close> = cork.scope("t")
    s:defer(function(e) seen[#seen + 1] = "1:" .. (e and e.kind or "nil") end)
    s:defer(function() error("cleanup two broke") end)
    s:defer(function(e) seen[#seen + 1] = "3:" .. (e and e.kind or "nil") end)
    cork.error("boom", "original failure")
  end)
  T.ok(not ok, "error propagates")
  T.is(err.kind, "boom", "original error kind survives a failing cleanup")
  T.is(err.message, "original failure", "original message survives")
  T.same(seen, { "3:boom", "1:boom" }, "every other cleanup ran and saw the error")
end

do -- failing cleanup on a normal exit raises kind "cleanup" after all ran
  local ran = 0
  local err = T.raises(function()
    local s <close> = cork.scope("norm")
    s:defer(function() ran = ran + 1 end)
    s:defer(function() cork.error("docker", "no such container") end)
    s:defer(function() ran = ran + 1 end)
  end, "cleanup", "^1 cleanup in scope 'norm' failed %(first: no such container%)$",
  "failed cleanup on normal exit raises kind cleanup")
  T.is(ran, 2, "the other cleanups still ran")
  T.is(err and err.first and err.first.kind, "docker", "the first failure is attached")
end

do -- release hands resources on; cancel forgets one
  local ran = {}
  do
    local s <close> = cork.scope("r")
    s:defer(function() ran[#ran + 1] = "x" end)
    T.is(s:pending(), 1, "one pending")
    T.is(s:release(), 1, "release returns how many were handed on")
  end
  T.same(ran, {}, "released cleanups do not run")
  do
    local s <close> = cork.scope("c")
    local t1 = s:defer(function() ran[#ran + 1] = "one" end)
    s:defer(function() ran[#ran + 1] = "two" end)
    T.ok(s:cancel(t1), "cancel finds the token")
    T.ok(not s:cancel(t1), "cancel twice is false")
  end
  T.same(ran, { "two" }, "cancelled cleanup does not run")
end

do -- explicit close is idempotent; defer after close is a programmer error
  local n = 0
  local s = cork.scope("x")
  s:defer(function() n = n + 1 end)
  s:close(); s:close()
  T.is(n, 1, "close runs cleanups once")
  T.raises(function() s:defer(print) end, nil, "defer on a closed scope", "defer after close raises")
  T.like(tostring(s), "^cork%.scope%(x, 0 pending, closed%)$", "tostring")
end

do -- a cleanup can use bindings even when an interrupt is pending
  local ok_inside
  local err = T.raises(function()
    local s <close> = cork.scope("int")
    s:defer(function()
      ok_inside = pcall(cork.sleep, 0.01)
    end)
    local me = cork.core.pid()
    -- TERM, not INT: a test run in the background may have SIGINT ignored
    -- (cork keeps it ignored); tests/lua/test_cli.lua covers INT in a child
    cork.proc.run({ "kill", "-TERM", tostring(me) })
    cork.sleep(5)
  end, "interrupted", "^interrupted %(SIGTERM%)$", "SIGTERM becomes kind interrupted at the next safe point")
  T.ok(ok_inside, "bindings work inside cleanup while the interrupt is pending")
  cork.core.clear_interrupt()
end

do -- misuse
  T.raises(function() cork.scope("x"):defer("not a function") end, nil, "function expected", "defer needs a function")
  T.raises(function() cork.scope("x").defer(42) end, nil, "cork.scope.Scope expected", "method on a non-scope")
end

do -- callable module and new()
  local a, b = cork.scope("a"), require("cork.scope").new("b")
  T.is(a:name(), "a", "cork.scope(name)")
  T.is(b:name(), "b", "cork.scope.new(name)")
end

T.done()
