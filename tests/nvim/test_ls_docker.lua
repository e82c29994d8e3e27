-- The plugin's :Cork ls against a real engine (run by
-- tests/integration/test_nvim_docker.lua, which gives it the private engine
-- and a w6 bottle): a detached launch of the docker recipe appears in the
-- list, <CR> attaches in a :terminal through attach_command, `d` asks
-- first (no: it stays), then ends it (yes: it disappears).
local T = dofile(vim.env.CORK_ROOT .. "/tests/nvim/tap.lua")

T.run(function()
  local cork = T.load_plugin()
  cork.setup({ cmd = { vim.env.CORK_BIN } })
  local asked = {}
  local answer = false
  cork.confirm = function(q) asked[#asked + 1] = q; return answer end

  vim.cmd("Cork ls")
  local lb = T.buf("^cork://ls$")
  T.ok(T.wait(function() return T.text(lb):find("no bottles") end, 30000), "ls: empty at first")

  vim.cmd("Cork run docker --bottle w6")
  local rb = vim.api.nvim_get_current_buf()
  local fin = T.wait(function() return T.text(rb):match("%-%- finished %(exit 0%): bottle (%S+)") end, 180000)
  T.ok(fin ~= nil, "run docker: finished, a bottle up (" .. tostring(fin) .. ")", T.text(rb))
  local text = T.text(rb)
  T.like(text, "pid %d+: cork %-%-json run docker %-%-bottle w6 %-%-detach", "run docker: detached")
  T.like(text, "==> ", "run docker: its steps streamed in")
  T.like(text, "bottle_ready ", "run docker: bottle_ready shown")
  T.ok(not text:find(vim.env.CORK_W6_TOKEN, 1, true), "run docker: no token value in the buffer")
  local slug = fin or "?"

  T.ok(T.wait(function() return T.text(lb):find("\n" .. slug:gsub("%-", "%%-") .. " +docker +running") end, 30000),
    "ls: the bottle appeared, running (bottle event)", T.text(lb))

  -- <CR> on its line: a terminal running attach_command's argv
  vim.api.nvim_set_current_win(vim.fn.bufwinid(lb))
  local line
  for i, l in ipairs(T.lines(lb)) do if l:find(slug, 1, true) == 1 then line = i end end
  vim.api.nvim_win_set_cursor(0, { line or 1, 0 })
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes("<CR>", true, false, true), "x", false)
  local term = T.wait(function()
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_get_option(b, "buftype") == "terminal" then return b end
    end
  end, 15000)
  T.ok(term ~= nil, "<CR>: a terminal opened")
  -- (the pty child is Neovim itself for a moment, until it execs)
  local cmdline = ""
  T.wait(function()
    if not term then return true end
    local f = io.open("/proc/" .. vim.api.nvim_buf_get_var(term, "terminal_job_pid") .. "/cmdline", "rb")
    cmdline = f and f:read("*a"):gsub("%z", " ") or ""
    if f then f:close() end
    return cmdline:find("^%S*docker ")
  end, 5000)
  T.like(cmdline, "^%S*docker .*exec .*cork%-" .. slug:gsub("%-", "%%-") .. "%-agent", "<CR>: it runs docker exec into the bottle's agent")
  T.ok(T.wait(function() return term and vim.api.nvim_buf_is_valid(term) and vim.fn.jobwait({ vim.api.nvim_buf_get_var(term, "terminal_job_id") }, 0)[1] == -1 end, 5000),
    "<CR>: the attach is running")
  if term then vim.cmd("bwipeout! " .. term) end
  vim.cmd("stopinsert")

  -- d: asked first; no keeps it
  vim.api.nvim_set_current_win(vim.fn.bufwinid(lb))
  vim.api.nvim_win_set_cursor(0, { line or 1, 0 })
  vim.api.nvim_feedkeys("d", "x", false)
  T.is(asked[1], ("End bottle %s (cork down)?"):format(slug), "d: asks before ending the bottle")
  vim.wait(1500)
  T.ok(T.text(lb):find(slug, 1, true) ~= nil, "d, answered no: the bottle stays")

  -- d, yes: ended; the list drops it on bottle_gone
  answer = true
  vim.api.nvim_win_set_cursor(0, { line or 1, 0 })
  vim.api.nvim_feedkeys("d", "x", false)
  T.ok(T.wait(function() return not T.text(lb):find(slug, 1, true) end, 120000), "d, answered yes: gone from the list (bottle_gone)", T.text(lb))
  T.ok(T.wait(function() return T.notes_like("^cork: ended " .. slug:gsub("%-", "%%-"))[1] end, 10000), "d: said so")

  local f = io.open(vim.env.CORK_NVIM_TMP .. "/server-pid", "w")
  f:write(tostring(cork.server.pid()))
  f:close()
  io.open(vim.env.CORK_NVIM_TMP .. "/slug", "w"):write(slug)
end)
