-- The Neovim plugin (editors/nvim) against the real `cork serve --stdio`,
-- no Docker: recipes, completion, plan, `run hello` streamed into its
-- buffer (step names and errors highlighted), a failing run's error, cancel,
-- ls with a journalled bottle appearing and going after down, a missing and
-- a dead cork binary (one clear message each), a killed server restarted
-- with a message. Run by tests/cli/nvim.sh, which checks afterwards that no
-- cork process outlives :qa.
local T = dofile(vim.env.CORK_ROOT .. "/tests/nvim/tap.lua")
local L = vim.log.levels

T.run(function()
  local cork = T.load_plugin()
  local server = cork.server
  local bin = vim.env.CORK_BIN
  cork.setup({ cmd = { bin } })
  T.ok(vim.fn.exists(":Cork") == 2, ":Cork is defined")
  T.ok(not server.running(), "loading the plugin starts no server")

  -- :Cork recipes ------------------------------------------------------------------
  vim.cmd("Cork recipes")
  local b = T.wait(function() return T.buf("^cork://recipes$") end)
  T.ok(b ~= nil, "recipes: a cork://recipes buffer")
  T.wait(function() return b and T.text(b):find("\nhello ") end, 5000)
  T.like(b and T.text(b), "\nhello +embedded +a tiny recipe that exercises scopes, steps and events", "recipes: hello, its origin and description")
  T.like(b and T.text(b), "\nfailing +", "recipes: one from CORK_PATH too")
  T.ok(b and vim.fn.bufwinid(b) ~= -1, "recipes: shown in a window")
  local first_pid = server.pid()
  T.ok(first_pid ~= nil and first_pid > 0, "the server started on first use (pid " .. tostring(first_pid) .. ")")

  -- completion ------------------------------------------------------------------
  local c = cork.complete("", "Cork ", 5)
  T.ok(vim.tbl_contains(c, "run") and vim.tbl_contains(c, "ls") and vim.tbl_contains(c, "supervise"), "complete: subcommands")
  c = cork.complete("he", "Cork run he", 11)
  T.is(table.concat(c, ","), "hello", "complete: recipe names")
  c = cork.complete("", "Cork plan ", 10)
  T.is(table.concat(c, ","), "--agent,dev,work", "complete: bottle names (and --agent)")
  c = cork.complete("w", "Cork run docker --bottle w", 26)
  T.is(table.concat(c, ","), "work", "complete: --bottle takes bottle names")

  -- :Cork plan BOTTLE -------------------------------------------------------------
  vim.cmd("Cork plan work")
  b = T.wait(function() return T.buf("^cork://plan/work$") end)
  T.wait(function() return b and T.text(b):find('"slug"') end, 10000)
  local plan = b and T.text(b) or ""
  T.like(plan, '\n  "slug": "work%-', "plan: the plan, pretty-printed")
  T.like(plan, '"WORK_TOKEN"', "plan: the secret's name is there")
  T.ok(not plan:find(vim.env.CORK_NVIM_SECRET, 1, true), "plan: the secret's value is not")
  T.is(b and vim.api.nvim_buf_get_option(b, "filetype"), "json", "plan: a json buffer")
  local n0 = #T.notes
  vim.cmd("Cork plan nosuch")
  local e = T.wait(function() return T.notes_like("^cork plan nosuch: ", nil, n0 + 1)[1] end, 10000)
  T.like(e and e.msg, '^cork plan nosuch: no bottle named "nosuch" .* %[not_found%]$', "plan: cork's error, with its kind")
  T.is(e and e.level, L.ERROR, "plan: at error level")

  -- :Cork run hello ---------------------------------------------------------------
  vim.cmd("Cork run hello --steps 2 --pause 0.1")
  b = vim.api.nvim_get_current_buf()
  T.like(vim.api.nvim_buf_get_name(b), "^cork://run/%d+/hello$", "run: a buffer of its own")
  T.wait(function() return T.text(b):find("%-%- finished") end, 15000)
  local lines = T.lines(b)
  local text = table.concat(lines, "\n")
  T.like(text, "\n%d%d:%d%d:%d%d ==> step 1 of 2\n", "run: step 1 streamed in")
  T.like(text, "resource index=1 name=thing%-1", "run: the recipe's own events")
  T.like(text, "hello, world", "run: its info lines")
  T.like(text, "undid step 1\n.*%-%- finished %(exit 0%)$", "run: finished last")
  local step_line
  for i, l in ipairs(lines) do if l:find("==> step 1 of 2", 1, true) then step_line = i end end
  T.like(step_line and T.groups(b, step_line), "CorkStep", "run: step names highlighted (CorkStep)")
  T.like(T.groups(b, #lines), "CorkOk", "run: success highlighted (CorkOk)")

  -- a failing recipe's error -------------------------------------------------------
  n0 = #T.notes
  vim.cmd("Cork run failing")
  b = vim.api.nvim_get_current_buf()
  T.wait(function() return T.text(b):find("%-%- failed") end, 15000)
  lines = T.lines(b)
  text = table.concat(lines, "\n")
  T.like(text, "FAILED %[manifest%] the bottle file is broken on purpose", "failing: the failed event in the buffer")
  T.like(text, "%-%- failed %[manifest%] %(exit 2%)$", "failing: finished, its kind and exit code")
  local fl
  for i, l in ipairs(lines) do if l:find("FAILED [manifest]", 1, true) then fl = i end end
  T.like(fl and T.groups(b, fl), "CorkError", "failing: the error highlighted (CorkError)")
  e = T.wait(function() return T.notes_like("^cork run failing:", nil, n0 + 1)[1] end, 5000)
  T.is(e and e.msg, "cork run failing: the bottle file is broken on purpose [manifest]", "failing: notified with kind and message")
  T.is(e and e.level, L.ERROR, "failing: at error level")
  T.is(#T.notes_like("traceback", nil, n0 + 1), 0, "failing: no traceback")

  -- :Cork cancel ------------------------------------------------------------------
  local marker = vim.env.CORK_NVIM_TMP .. "/cancel-marker"
  vim.cmd("Cork run hello --steps 3 --pause 5 --marker " .. marker)
  b = vim.api.nvim_get_current_buf()
  T.wait(function() return T.text(b):find("resource index=1") end, 15000)
  vim.cmd("Cork cancel")
  T.wait(function() return T.text(b):find("%-%- cancelled") end, 15000)
  text = T.text(b)
  T.like(text, "cancel asked: cleanups run", "cancel: asked")
  T.like(text, "undid step 1\n", "cancel: the recipe's cleanup ran and was streamed")
  T.like(text, "%-%- cancelled %(exit 130%)$", "cancel: finished, cancelled (130)")
  local f = io.open(marker)
  T.is(f and f:read("*a"), "cleanup 1 after: interrupted\n", "cancel: the cleanup really ran")
  if f then f:close() end
  n0 = #T.notes
  vim.cmd("Cork cancel")
  T.ok(T.wait(function() return T.notes_like("no run in progress", L.WARN, n0 + 1)[1] end, 2000), "cancel with nothing running: says so")

  -- :Cork ls: a journalled bottle appears, then goes after :Cork down -------------
  vim.cmd("Cork ls")
  local lb = T.buf("^cork://ls$")
  T.ok(lb ~= nil, "ls: a cork://ls buffer")
  T.wait(function() return lb and T.text(lb):find("no bottles") end, 10000)
  vim.cmd("Cork run fakelaunch --slug nvim-test-a1b2")
  -- (a first event may show it half-written, backend "?": the next one completes it)
  T.wait(function() return T.text(lb):find("\nnvim%-test%-a1b2 +docker") end, 15000)
  T.like(T.text(lb), "\nnvim%-test%-a1b2 +docker", "ls: the new bottle appeared (bottle event)")
  c = cork.complete("nvim", "Cork down nvim", 14)
  T.is(table.concat(c, ","), "nvim-test-a1b2", "complete: slugs for down")
  vim.cmd("Cork down nvim-test-a1b2")
  T.wait(function() return not T.text(lb):find("nvim%-test%-a1b2") end, 15000)
  T.ok(not T.text(lb):find("nvim-test-a1b2", 1, true), "ls: gone after down (bottle_gone event)")

  -- hidden, the list has no watch; shown again, it has one
  local wpid = cork.ls_state().pid
  vim.api.nvim_set_current_win(vim.fn.bufwinid(lb))
  vim.cmd("hide")
  T.ok(T.wait(function() return cork.ls_state().watch == nil and vim.fn.filereadable("/proc/" .. wpid .. "/cmdline") == 0 end, 5000),
    "ls hidden: its watch ends")
  vim.cmd("Cork ls")
  T.ok(T.wait(function() return cork.ls_state().watch ~= nil and cork.ls_state().pid ~= wpid end, 5000),
    "ls shown again: a new watch")
  T.wait(function() return T.text(lb):find("no bottles") end, 5000)

  -- a server killed outright: restarted, with a message ---------------------------
  local pid = server.pid()
  local watch_pid = cork.ls_state().pid
  T.ok(watch_pid ~= nil, "ls: its watch runs as pid " .. tostring(watch_pid))
  n0 = #T.notes
  vim.loop.kill(pid, "sigkill")
  e = T.wait(function() return T.notes_like("restarted", nil, n0 + 1)[1] end, 10000)
  T.like(e and e.msg, ("^cork: the server %%(pid %d%%) died %%(killed by signal 9%%); restarted it %%(pid %%d+%%)$"):format(pid),
    "killed server: the restart message")
  T.is(e and e.level, L.WARN, "killed server: at warn level")
  T.ok(server.pid() ~= nil and server.pid() ~= pid, "killed server: a new server runs")
  T.ok(T.wait(function() return vim.fn.filereadable("/proc/" .. watch_pid .. "/cmdline") == 0 end, 5000),
    "killed server: its orphaned ls watch was ended")
  T.ok(T.wait(function() return cork.ls_state().watch ~= nil and cork.ls_state().pid ~= nil end, 10000),
    "killed server: the list subscribed again")
  vim.cmd("Cork recipes")
  T.ok(T.wait(function() return T.text(T.buf("^cork://recipes$")):find("\nhello ") end, 5000), "killed server: requests work again")

  -- a missing or dead cork: one clear message, no traceback --------------------
  server.stop()
  cork.setup({ cmd = { vim.env.CORK_NVIM_TMP .. "/no-such-cork" } })
  n0 = #T.notes
  vim.cmd("Cork recipes")
  T.wait(function() return #T.notes > n0 end, 2000)
  vim.wait(200)
  T.is(#T.notes - n0, 1, "missing cork: one message")
  T.like(T.notes[n0 + 1] and T.notes[n0 + 1].msg, "^cork: cannot run '.*/no%-such%-cork': not found or not executable",
    "missing cork: says what is wrong")
  T.is(T.notes[n0 + 1] and T.notes[n0 + 1].level, L.ERROR, "missing cork: at error level")
  cork.setup({ cmd = { vim.env.CORK_NVIM_TMP .. "/dead-cork" } })
  n0 = #T.notes
  vim.cmd("Cork run hello")
  T.wait(function() return T.notes_like("exited without answering", nil, n0 + 1)[1] end, 5000)
  vim.wait(300)
  local dead = T.notes_like("", nil, n0 + 1)
  T.is(#dead, 1, "dead cork: one message")
  T.like(dead[1] and dead[1].msg, "^cork: `.*/dead%-cork serve %-%-stdio` exited without answering %(exit 3%): dead%-cork: broken on purpose$",
    "dead cork: its exit and its last words")
  T.is(#T.notes_like("traceback", nil, n0 + 1), 0, "no traceback")
  T.is(vim.v.errmsg, "", "no Vim error")
  cork.setup({ cmd = { bin } })
  vim.cmd("Cork recipes")
  T.ok(T.wait(function() return server.running() end, 5000), "a working cork again: the server starts")

  -- supervise against the real server: a request in a bottle's queue, denied ----
  vim.cmd("Cork ls")   -- (its watch ended with the server stopped above: this subscribes again)
  vim.cmd("Cork run fakelaunch --slug nvim-sv-c3d4")
  T.wait(function() return T.text(lb):find("\nnvim%-sv%-c3d4 +docker") end, 15000)
  local queue = vim.env.XDG_STATE_HOME .. "/cork/nvim-sv-c3d4/supervise/queue"
  vim.fn.mkdir(queue, "p")
  vim.fn.writefile({ '{"id":"q1","kind":"allowlist","host":"pypi.org","justification":"pip install","created":1}' },
    queue .. "/q1.json")
  vim.cmd("Cork supervise nvim-sv-c3d4")
  local rsb = T.wait(function() local x = T.buf("^cork://supervise$"); return x and T.text(x):find("q1") and x end, 10000)
  T.like(rsb and T.text(rsb), "\nq1  nvim%-sv%-c3d4  allowlist +pypi%.org\n    why: pip install",
    "supervise (real server): the pending request")
  if rsb then
    vim.api.nvim_set_current_win(vim.fn.bufwinid(rsb))
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.api.nvim_feedkeys("x", "x", false)
    T.wait(function() return T.text(rsb):find("no pending requests") end, 10000)
    T.like(T.text(rsb), "no pending requests", "supervise (real server): x denies; none left")
    vim.cmd("bwipeout " .. rsb)
  end
  local dj = vim.fn.filereadable(queue .. "/q1.decision.json") == 1 and vim.json.decode(table.concat(vim.fn.readfile(queue .. "/q1.decision.json"), "\n"))
  T.is(dj and dj.status, "denied", "supervise (real server): the decision file the daemon reads")
  T.ok(T.wait(function() return T.notes_like("^cork: denied q1 %(allowlist pypi%.org%)$")[1] end, 5000), "supervise (real server): the denial said")
  vim.cmd("Cork down nvim-sv-c3d4")
  T.wait(function() return not T.text(lb):find("nvim-sv-c3d4", 1, true) end, 15000)

  -- supervise: a cork whose serve has no supervise methods says so ------------
  server.stop()
  vim.env.CORK_FAKE_NO_SUPERVISE = "1"
  cork.setup({ cmd = { bin, "script", vim.env.CORK_ROOT .. "/tests/nvim/fake_supervise_serve.lua" } })
  n0 = #T.notes
  vim.cmd("Cork supervise")
  T.wait(function() return T.notes[n0 + 1] end, 5000)
  T.like(T.notes[n0 + 1] and T.notes[n0 + 1].msg, "not available yet", "supervise: a cork without it: not available yet")
  T.is(T.notes[n0 + 1] and T.notes[n0 + 1].level, L.WARN, "supervise: at warn level")
  T.ok(T.buf("^cork://supervise$") == nil, "supervise: no buffer left behind")
  server.stop()
  vim.env.CORK_FAKE_NO_SUPERVISE = nil

  -- supervise against a stand-in server speaking its methods ---------------------
  server.stop()
  cork.setup({ cmd = { bin, "script", vim.env.CORK_ROOT .. "/tests/nvim/fake_supervise_serve.lua" } })
  cork.ask_note = function() return "ok for pip only" end
  vim.cmd("Cork supervise")
  local sb = T.wait(function() local x = T.buf("^cork://supervise$"); return x and T.text(x):find("r2") and x end, 5000)
  T.ok(sb ~= nil, "supervise: a cork://supervise buffer")
  T.like(sb and T.text(sb), "\nr1  dev%-a1b2c3  allowlist +pypi%.org\n    why: pip install\nr2 .* route .*api%.example%.com /v1/%*",
    "supervise: the pending requests, with their justification")
  vim.api.nvim_set_current_win(vim.fn.bufwinid(sb))
  vim.api.nvim_win_set_cursor(0, { 3, 0 })   -- r1's "why" line
  vim.api.nvim_feedkeys("A", "x", false)
  T.wait(function() return not T.text(sb):find("pypi.org", 1, true) end, 5000)
  T.ok(not T.text(sb):find("pypi.org", 1, true), "supervise: A approves (with a note); the list drops it")
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  vim.api.nvim_feedkeys("x", "x", false)
  T.wait(function() return T.text(sb):find("no pending requests") end, 5000)
  T.like(T.text(sb), "no pending requests", "supervise: x denies; none left")
  local df = io.open(vim.env.CORK_NVIM_TMP .. "/decisions")
  local dec = df and df:read("*a") or ""
  if df then df:close() end
  T.is(dec, "r1 approve ok for pip only\nr2 deny -\n",
    "supervise: the decisions the server got")
  T.ok(T.notes_like("^cork: approved r1 %(allowlist pypi%.org%)$")[1] ~= nil, "supervise: the approval said")
  vim.cmd("bwipeout " .. sb)
  server.stop()
  cork.setup({ cmd = { bin } })
  T.is(#T.notes_like("a handler failed"), 0, "no handler failed during the whole test")

  -- :help cork (the doc, its tags made in a copy)
  local docdir = vim.env.CORK_NVIM_TMP .. "/rtp/doc"
  vim.fn.mkdir(docdir, "p")
  vim.fn.writefile(vim.fn.readfile(vim.env.CORK_ROOT .. "/editors/nvim/doc/cork.txt"), docdir .. "/cork.txt")
  vim.v.errmsg = ""
  vim.cmd("silent helptags " .. docdir)
  T.is(vim.v.errmsg, "", "help: helptags without error (no duplicate tags)")
  vim.opt.runtimepath:append(vim.env.CORK_NVIM_TMP .. "/rtp")
  for _, tag in ipairs({ "cork", ":Cork", ":Cork-ls", ":Cork-run", "cork-config", "g:cork_bin" }) do
    local ok = pcall(vim.cmd, "help " .. tag)
    T.ok(ok and vim.fn.expand("%:t") == "cork.txt", ":help " .. tag)
    pcall(vim.cmd, "helpclose")
  end

  local f2 = io.open(vim.env.CORK_NVIM_TMP .. "/server-pid", "w")
  f2:write(tostring(server.pid()))
  f2:close()
end)
