-- cork.proc readers: spawn with stdout/stderr "pipe", read_line with timeouts,
-- poll over several pipes, stdin(), over-long lines, release().
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc = cork.proc
local bin = os.getenv("CORK_BIN")

-- lines (the first two in one write, so both are buffered after the first
-- read), a slow line, a last line without newline, stderr apart
local p = proc.spawn({ "sh", "-c", "printf 'one\\ntwo\\n'; sleep 0.3; printf 'thr'; sleep 0.1; printf 'ee'; echo err >&2" },
  { stdout = "pipe", stderr = "pipe" })
local out, err = p:stdout(), p:stderr()
T.is(p:stdout(), out, "p:stdout() is the same reader each call")
T.is(out:read_line(), "one", "read_line waits for a line")
T.is(out:read_line(0), "two", "a buffered line is there at once with timeout 0")
local t0 = cork.time()
local l, why = out:read_line(0.05)
T.ok(l == nil and why == "timeout" and cork.time() - t0 < 0.5, "nothing complete within the timeout: nil, \"timeout\"")
T.is(out:read_line(), "three", "a line written in two pieces comes out whole")
T.is(select(2, out:read_line()), "eof", "then eof")
T.is(select(2, out:read_line(0)), "eof", "eof again")
T.is(err:read_line(), "err", "stderr is its own reader")
T.is(p:wait().status, 0, "child exit status")
out:close(); err:close()
T.like(tostring(out), "closed", "closed reader says so")
T.raises(function() out:read_line() end, nil, "reader is closed", "a closed reader raises")
T.raises(function() proc.spawn({ "true" }):stdout() end, nil, 'stdout was not spawned with "pipe"',
  "p:stdout() without a pipe raises")

-- poll: ready readers in order, empty on timeout
local a = proc.spawn({ "sh", "-c", "sleep 0.2; echo A" }, { stdout = "pipe" })
local b = proc.spawn({ "sh", "-c", "echo B; sleep 1" }, { stdout = "pipe" })
local ready = proc.poll({ a:stdout(), b:stdout() }, 5)
T.ok(#ready == 1 and ready[1] == b:stdout(), "poll returns the reader with a line")
T.is(b:stdout():read_line(0), "B", "and its line is there")
ready = proc.poll({ a:stdout(), b:stdout() }, 5)
T.ok(#ready == 1 and ready[1] == a:stdout(), "then the other one")
T.is(a:stdout():read_line(0), "A", "its line")
t0 = cork.time()
ready = proc.poll({ b:stdout() }, 0.1)
T.ok(#ready == 0 and cork.time() - t0 >= 0.09, "poll times out with an empty list")
T.raises(function() proc.poll({ "x" }) end, nil, "item 1 is not an open reader", "poll checks its list")
b:close(0.1); a:close(0.1)

-- many lines at once, and a big one
local n = 5000
local many = proc.spawn({ "sh", "-c", "i=0; while [ $i -lt " .. n .. " ]; do echo line$i; i=$((i+1)); done" },
  { stdout = "pipe" })
local got, last = 0, nil
for line in function() return (many:stdout():read_line(5)) end do got = got + 1; last = line end
T.ok(got == n and last == "line" .. (n - 1), ("%d lines in order"):format(n))
local big = proc.spawn({ "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after" }, { stdout = "pipe" })
local line = big:stdout():read_line(10)
T.is(#line, 3000000, "a 3 MB line")
T.is(big:stdout():read_line(10), "after", "and the next")
big:close(0.1)
local huge = proc.spawn({ "sh", "-c", "head -c 17000000 /dev/zero | tr '\\0' x; echo; echo next" }, { stdout = "pipe" })
local l2, w2 = huge:stdout():read_line(20)
T.ok(l2 == nil and w2 == "too_long", "a line over 16 MiB: nil, \"too_long\"")
T.is(huge:stdout():read_line(20), "next", "the rest of it is dropped; the next line comes")
huge:close(0.1)

-- interruptible: a pending interrupt ends a wait
local slow = proc.spawn({ "sleep", "5" }, { stdout = "pipe" })
cork.core.clear_interrupt()
T.raises(function()
  -- TERM, not INT: a test run in the background may have SIGINT ignored,
  -- and cork keeps an ignored signal ignored
  local th = proc.spawn({ "sh", "-c", "sleep 0.2; kill -TERM " .. cork.core.pid() })
  slow:stdout():read_line()
end, "interrupted", nil, "a signal interrupts read_line")
cork.core.clear_interrupt()
slow:close(0.1)

-- stdin(): a child cork reads its own stdin line by line
local dir = cork.fs.tempdir("cork-reader")
cork.fs.write(dir .. "/in.lua", [[
  local r = cork.proc.stdin()
  assert(r == cork.proc.stdin())
  local out = {}
  while true do
    local l, why = r:read_line(5)
    if not l then out[#out + 1] = "<" .. why .. ">"; break end
    out[#out + 1] = l
  end
  io.write(table.concat(out, "|"))
]])
local r = proc.run({ bin, "script", dir .. "/in.lua" }, { stdin = "a\n\nb c\nlast" })
T.is(r.stdout, "a||b c|last|<eof>", "proc.stdin(): lines, an empty one, an unterminated last one, eof")

-- release(): the child outlives the handle
local rel = proc.spawn({ "sleep", "2" })
local pid = rel:pid()
rel:release()
rel:close()
rel = nil
collectgarbage(); collectgarbage()
T.ok(cork.core.pid_alive(pid), "a released child is not ended by close or __gc")
proc.run({ "kill", tostring(pid) })

cork.fs.remove(dir, { recursive = true })
T.done()
