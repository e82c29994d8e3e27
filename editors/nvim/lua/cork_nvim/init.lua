-- cork_nvim: cork in Neovim, through one `cork serve --stdio`.
--   :Cork recipes | plan BOTTLE | run RECIPE [ARGS] | cancel | ls | down SLUG... | supervise
-- See :help cork.
local server = require("cork_nvim.server")
local buf = require("cork_nvim.buf")

local M = {}
local L = vim.log.levels
local uv = vim.uv or vim.loop   -- vim.loop before 0.10

local opts = {
  attached = { hello = true },   -- recipes run without --detach (they have no bottle to leave running)
}

-- setup{cmd = {...}, end_on_exit = bool, attached = {"hello", ...}, timeout = ms}
function M.setup(o)
  o = vim.deepcopy(o or {})
  if o.attached then
    opts.attached = {}
    for _, r in ipairs(o.attached) do opts.attached[r] = true end
    o.attached = nil
  end
  server.configure(o)
end

M.server = server

-- An error of cork's: at error level, with its kind and message.
local function cork_error(what, err)
  server.notify(("cork %s: %s [%s]"):format(what, tostring(err.message), tostring(err.kind)), L.ERROR)
end
M.cork_error = cork_error

local function clock(ts)
  return os.date("%H:%M:%S", math.floor(tonumber(ts) or os.time()))
end

-- ---- :Cork recipes -------------------------------------------------------------

function M.recipes()
  server.request("recipes", nil, { on_result = function(err, res)
    if err then return cork_error("recipes", err) end
    local b = buf.scratch("cork://recipes")
    local w = 0
    for _, r in ipairs(res.recipes) do w = math.max(w, #r.name) end
    local lines = { { "# cork recipes  (<CR>: :Cork run NAME)", "CorkHint" } }
    for _, r in ipairs(res.recipes) do
      local name = r.name .. string.rep(" ", w - #r.name)
      lines[#lines + 1] = { ("%s  %-8s  %s"):format(name, r.origin or "", r.description or ""), "CorkStep", 0, #r.name }
    end
    buf.set(b, lines)
    buf.map(b, "<CR>", function()
      local name = vim.api.nvim_get_current_line():match("^(%S+)")
      if name and name ~= "#" then vim.api.nvim_feedkeys(":Cork run " .. name .. " ", "n", false) end
    end, "cork: run this recipe")
    buf.map(b, "q", "<cmd>close<CR>")
    buf.show(b)
  end })
end

-- ---- :Cork plan BOTTLE | :Cork plan --agent NAME -----------------------------------

function M.plan(args)
  local params = {}
  local i = 1
  while i <= #args do
    if args[i] == "--agent" then params.agent = args[i + 1]; i = i + 2
    elseif args[i] == "--bottle" then params.bottle = args[i + 1]; i = i + 2
    elseif args[i] == "--contents" then params.contents = true; i = i + 1
    elseif not params.bottle then params.bottle = args[i]; i = i + 1
    else return server.notify("cork: usage: :Cork plan BOTTLE [--agent NAME] [--contents]", L.ERROR) end
  end
  if not params.bottle and not params.agent then
    return server.notify("cork: usage: :Cork plan BOTTLE [--agent NAME] [--contents]", L.ERROR)
  end
  local what = params.bottle or params.agent
  server.request("plan", params, { on_result = function(err, res)
    if err then return cork_error("plan " .. what, err) end
    local b = buf.scratch("cork://plan/" .. what, "json")
    local lines = {}
    for _, l in ipairs(buf.pretty_json(res.plan)) do lines[#lines + 1] = { l } end
    buf.set(b, lines)
    buf.map(b, "q", "<cmd>close<CR>")
    buf.show(b)
  end })
end

-- ---- :Cork run RECIPE [ARGS] ----------------------------------------------------

local runs = {}       -- request id -> { buf, recipe, done }
local last_run        -- the id of the last run started

local STD = { ts = true, event = true, level = true, step = true, msg = true, id = true }

local function fields(ev)
  local keys = {}
  for k in pairs(ev) do if not STD[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = ev[k]
    if type(v) == "table" then v = buf.encode(v) elseif v == vim.NIL then v = "null" end
    parts[#parts + 1] = ("%s=%s"):format(k, tostring(v))
  end
  return table.concat(parts, " ")
end

-- One event as one line of the run buffer: { text, group, from, to, timegroup, timelen }.
local function event_line(ev)
  local t = clock(ev.ts) .. " "
  local n = #t
  local function line(body, group) return { t .. body, group, group and n or nil, -1, "CorkTime", n } end
  local e, msg = ev.event, ev.msg ~= nil and ev.msg ~= vim.NIL and tostring(ev.msg) or nil
  if e == "step" then return line("==> " .. (msg or ""), "CorkStep") end
  if e == "failed" then
    return line(("FAILED [%s] %s"):format(tostring(ev.kind), msg or ""), ev.kind == "interrupted" and "CorkWarn" or "CorkError")
  end
  if e == "finished" then
    if ev.status == "ok" then
      return line(("-- finished (exit 0)%s"):format(ev.slug and ev.slug ~= vim.NIL and (": bottle " .. ev.slug) or ""), "CorkOk")
    end
    if ev.cancelled == true then return line(("-- cancelled (exit %s)"):format(tostring(ev.exit_code)), "CorkWarn") end
    local kind = ev.kind ~= nil and ev.kind ~= vim.NIL and ev.kind or ev.status
    return line(("-- failed [%s] (exit %s)"):format(tostring(kind), tostring(ev.exit_code)),
      ev.status == "interrupted" and "CorkWarn" or "CorkError")
  end
  if e == "output" then return line("| " .. (msg or "")) end
  if ev.level == "error" or e == "error" then return line("ERROR " .. (msg or fields(ev)), "CorkError") end
  if ev.level == "warn" then return line("warning: " .. (msg or e) .. (msg and "" or (" " .. fields(ev))), "CorkWarn") end
  if e == "info" or e == "debug" then return line("    " .. (msg or "")) end
  -- a recipe's own event (resource, bottle_ready, ...)
  local f = fields(ev)
  return line(("    %s%s%s"):format(e, f ~= "" and " " or "", f), "CorkEvent")
end
M.event_line = event_line

function M.run(args, bang)
  local recipe = args[1]
  if not recipe then return server.notify("cork: usage: :Cork run RECIPE [ARGS...]", L.ERROR) end
  local rargs = {}
  for i = 2, #args do rargs[#rargs + 1] = args[i] end
  local detach = not bang and not opts.attached[recipe]
  local params = { recipe = recipe, args = rargs, detach = detach }
  local b
  local id
  id = server.request("run", params, {
    stream = true,
    on_result = function(err, res)
      if err then
        if runs[id] then runs[id].done = true end
        buf.append(b, { { ("%s FAILED [%s] %s"):format(clock(), tostring(err.kind), tostring(err.message)), "CorkError" } })
        return cork_error("run " .. recipe, err)
      end
      buf.append(b, { { ("%s pid %s: cork %s"):format(clock(), tostring(res.pid), table.concat(res.argv or {}, " ")), "CorkHint" } })
    end,
    on_event = function(ev)
      buf.append(b, { event_line(ev) })
      local r = runs[id]
      if ev.event == "failed" and r then r.failed = ev end
      if ev.event == "finished" and r then
        r.done = true
        if ev.status ~= "ok" and ev.cancelled ~= true then
          local f = r.failed or {}
          cork_error("run " .. recipe, { kind = ev.kind ~= vim.NIL and ev.kind or f.kind or ev.status,
            message = f.msg or ev.msg })
        elseif ev.cancelled == true then
          server.notify(("cork: run %s cancelled"):format(recipe), L.WARN)
        elseif ev.slug and ev.slug ~= vim.NIL then
          server.notify(("cork: run %s: bottle %s is up (:Cork ls)"):format(recipe, ev.slug), L.INFO)
        end
      end
    end,
    on_lost = function(err)
      if runs[id] then runs[id].done = true end
      buf.append(b, { { ("%s -- %s: the run goes on without this buffer (:Cork ls)"):format(clock(), err.message), "CorkError" } })
    end,
  })
  if not id then return end
  b = buf.scratch(("cork://run/%s/%s"):format((id:gsub("^nvim%-", "")), recipe))
  vim.api.nvim_buf_set_var(b, "cork_run_id", id)
  runs[id] = { buf = b, recipe = recipe }
  last_run = id
  buf.set(b, { { ("# cork run %s %s  (:Cork cancel stops it)"):format(recipe, table.concat(rargs, " ")), "CorkHint" } })
  buf.map(b, "q", "<cmd>close<CR>")
  buf.map(b, "<C-c>", function() M.cancel() end, "cork: cancel this run")
  buf.show(b)
end

-- ---- :Cork cancel ------------------------------------------------------------------

function M.cancel()
  local ok, id = pcall(vim.api.nvim_buf_get_var, 0, "cork_run_id")
  if not ok then id = last_run end
  local r = id and runs[id]
  if not r or r.done or not server.in_progress(id) then
    return server.notify("cork: no run in progress to cancel", L.WARN)
  end
  server.cancel(id, function(err)
    if err then return cork_error("cancel", err) end
    buf.append(r.buf, { { clock() .. " -- cancel asked: cleanups run", "CorkWarn" } })
  end)
end

-- ---- :Cork ls ---------------------------------------------------------------------

local ls = { buf = nil, rows = {}, watch = nil, lines = {} }

local function ls_render()
  local b = ls.buf
  if not b or not vim.api.nvim_buf_is_valid(b) then return end
  local slugs = {}
  for slug in pairs(ls.rows) do slugs[#slugs + 1] = slug end
  table.sort(slugs)
  local lines = {
    { "# cork bottles  <CR> attach  d down  r refresh  q close", "CorkHint" },
    { ("%-22s %-13s %-9s %-16s %-6s %s"):format("SLUG", "BACKEND", "STATUS", "ALIAS", "AGE", "PORTS"), "CorkHeader" },
  }
  ls.lines = {}
  for _, slug in ipairs(slugs) do
    local r = ls.rows[slug]
    local ports = {}
    if type(r.ports) == "table" then
      for k, v in pairs(r.ports) do ports[#ports + 1] = type(k) == "number" and tostring(v) or (k .. "=" .. tostring(v)) end
      table.sort(ports)
    end
    local status = tostring(r.status or "?")
    local group = status == "running" and nil or (status == "stale" or status == "partial") and "CorkWarn" or nil
    lines[#lines + 1] = { ("%-22s %-13s %-9s %-16s %-6s %s"):format(slug, tostring(r.backend or "?"), status,
      tostring(r.alias ~= vim.NIL and r.alias or "-"), tostring(r.age or "?"),
      #ports > 0 and table.concat(ports, ",") or "-"), group }
    ls.lines[#lines] = slug
  end
  if #slugs == 0 then lines[#lines + 1] = { "(no bottles)", "CorkHint" } end
  buf.set(b, lines)
end

local function ls_slug()
  return ls.lines[vim.api.nvim_win_get_cursor(0)[1]]
end

local function ls_subscribe()
  if not ls.buf or not vim.api.nvim_buf_is_valid(ls.buf) then return end
  if ls.watch and server.in_progress(ls.watch) then return end   -- one watch at a time
  ls.rows = {}
  local id, pid
  id = server.request("ls", { watch = true }, {
    stream = true,
    on_result = function(err, res)
      if not err then pid = res.pid; if id == ls.watch then ls.pid = pid end end
      if err then
        ls.watch = nil
        if err.kind == "invalid_params" then
          -- a cork without watches: one listing (r refreshes)
          return server.request("ls", nil, { on_result = function(e2, res)
            if e2 then return cork_error("ls", e2) end
            ls.rows = {}
            for _, r in ipairs(res.bottles) do ls.rows[r.slug] = r end
            ls_render()
          end })
        end
        return cork_error("ls", err)
      end
    end,
    on_event = function(ev)
      if ev.event == "finished" then pid = nil end
      if id ~= ls.watch then return end
      if ev.event == "bottle" and type(ev.slug) == "string" then ls.rows[ev.slug] = ev; ls_render()
      elseif ev.event == "bottle_gone" and type(ev.slug) == "string" then ls.rows[ev.slug] = nil; ls_render()
      elseif ev.event == "finished" then
        ls.watch = nil
        if ev.status ~= "ok" then cork_error("ls", { kind = ev.kind ~= vim.NIL and ev.kind or ev.status, message = ev.msg }) end
      end
    end,
    on_lost = function()
      -- a server killed outright leaves its children: end the watch it ran
      -- for us (`cork ls --watch` stops at SIGINT), never anything else
      if id == ls.watch then ls.watch, ls.pid = nil, nil end
      local f = pid and io.open(("/proc/%d/cmdline"):format(pid), "rb")
      local cmdline = f and f:read("*a") or ""
      if f then f:close() end
      if cmdline:find("ls\0--watch", 1, true) then uv.kill(pid, "sigint") end
    end,
  })
  ls.watch = id
  ls_render()
end

local function ls_unsubscribe()
  if ls.watch and server.in_progress(ls.watch) then server.cancel(ls.watch) end
  ls.watch = nil
end

-- The argv cork gives, in a terminal of Neovim's.
local function attach(slug)
  server.request("attach_command", { slug = slug }, { on_result = function(err, res)
    if err then return cork_error("attach " .. slug, err) end
    vim.cmd("botright new")
    if vim.fn.has("nvim-0.11") == 1 then
      vim.fn.jobstart(res.argv, { term = true })   -- termopen() is deprecated there
    else
      vim.fn.termopen(res.argv)
    end
    pcall(vim.api.nvim_buf_set_var, 0, "cork_slug", slug)
    vim.cmd("startinsert")
  end })
end

-- End bottles; the list updates itself from the watch.
local function down(slugs, done)
  server.request("down", { slugs = slugs }, { on_result = function(err, res)
    if err then
      cork_error("down " .. table.concat(slugs, " "), err)
    else
      local names = {}
      for _, d in ipairs(res.down) do names[#names + 1] = d.slug end
      server.notify(("cork: ended %s"):format(table.concat(names, ", ")), L.INFO)
    end
    if done then done(err, res) end
  end })
end
M.down_slugs = down

-- Asks before ending a bottle (tests replace it).
function M.confirm(question)
  return vim.fn.confirm(question, "&Yes\n&No", 2) == 1
end

function M.ls()
  if ls.buf and vim.api.nvim_buf_is_valid(ls.buf) then
    buf.show(ls.buf)
    if not ls.watch then ls_subscribe() end
    return
  end
  local b = buf.scratch("cork://ls")
  ls.buf = b
  buf.map(b, "<CR>", function()
    local slug = ls_slug()
    if slug then attach(slug) end
  end, "cork: attach to this bottle's agent")
  buf.map(b, "d", function()
    local slug = ls_slug()
    if slug and M.confirm(("End bottle %s (cork down)?"):format(slug)) then
      down({ slug }, function() if not ls.watch then ls_subscribe() end end)
    end
  end, "cork: end this bottle")
  buf.map(b, "r", function() ls_unsubscribe(); ls_subscribe() end, "cork: list again")
  buf.map(b, "q", "<cmd>close<CR>")
  vim.api.nvim_create_autocmd("BufWipeout", { buffer = b, callback = function()
    ls_unsubscribe()
    ls.buf = nil
  end })
  -- no window shows it: no watch runs for it; shown again: it subscribes
  vim.api.nvim_create_autocmd("BufHidden", { buffer = b, callback = function() ls_unsubscribe() end })
  vim.api.nvim_create_autocmd("BufWinEnter", { buffer = b, callback = function()
    if not ls.watch then ls_subscribe() end
  end })
  buf.show(b)   -- (BufWinEnter subscribes)
  ls_subscribe()
end

function M.ls_state() return ls end

-- After a restart, a list on screen subscribes again.
server.on_restart(function()
  if ls.buf and vim.api.nvim_buf_is_valid(ls.buf) and not ls.watch then ls_subscribe() end
end)

-- ---- :Cork down SLUG... -----------------------------------------------------------

function M.down(args)
  if #args == 0 then return server.notify("cork: usage: :Cork down SLUG...", L.ERROR) end
  down(args)
end

-- ---- :Cork supervise [SLUG] ---------------------------------------------------------
-- The pending approvals of bottles with supervise (the server's
-- supervise_pending / supervise_decide). A cork without them says so.

local sv = { buf = nil, slug = nil, lines = {}, timer = nil }

local NOT_YET = "cork: :Cork supervise is not available yet: this cork's `serve` has no supervise methods "
  .. "(they come with the real bundle's supervise daemon)"

local function sv_render(reqs)
  local b = sv.buf
  if not b or not vim.api.nvim_buf_is_valid(b) then return end
  local lines = {
    { ("# cork supervise%s  a approve  x deny  A/X with a note  r refresh  q close"):format(sv.slug and (" " .. sv.slug) or ""), "CorkHint" },
  }
  sv.lines = {}
  for _, r in ipairs(reqs) do
    local paths = type(r.paths) == "table" and #r.paths > 0 and (" " .. table.concat(r.paths, ",")) or ""
    lines[#lines + 1] = { ("%s  %s  %-9s %s%s"):format(tostring(r.id), tostring(r.slug), tostring(r.kind),
      tostring(r.host), paths), "CorkStep" }
    sv.lines[#lines] = r
    lines[#lines + 1] = { "    why: " .. tostring(r.justification ~= vim.NIL and r.justification or "") }
    sv.lines[#lines] = r
  end
  if #reqs == 0 then lines[#lines + 1] = { "(no pending requests)", "CorkHint" } end
  buf.set(b, lines)
end

local function sv_refresh(first)
  server.request("supervise_pending", sv.slug and { slug = sv.slug } or nil, { on_result = function(err, res)
    if err then
      if err.kind == "unknown_method" then
        if sv.buf and vim.api.nvim_buf_is_valid(sv.buf) then vim.cmd("bwipeout " .. sv.buf) end
        return server.notify(NOT_YET, L.WARN)
      end
      return cork_error("supervise", err)
    end
    sv_render(res.requests or {})
    if first then buf.show(sv.buf) end
  end })
end

-- A note for the agent with the decision (tests replace it).
function M.ask_note(verb, req)
  return vim.fn.input(("%s %s (%s): note for the agent: "):format(verb, tostring(req.id), tostring(req.host)))
end

local function sv_decide(decision, with_note)
  local r = sv.lines[vim.api.nvim_win_get_cursor(0)[1]]
  if not r then return end
  local params = { id = r.id, decision = decision }
  if with_note then
    local note = M.ask_note(decision, r)
    if note and note ~= "" then params.note = note end
  end
  server.request("supervise_decide", params, { on_result = function(err, res)
    if err then return cork_error("supervise " .. decision .. " " .. tostring(r.id), err) end
    server.notify(("cork: %s %s (%s %s)"):format(tostring(res.status or decision), tostring(r.id), tostring(r.kind),
      tostring(r.host)), L.INFO)
    sv_refresh(false)
  end })
end

function M.supervise(args)
  sv.slug = args[1]
  if not sv.buf or not vim.api.nvim_buf_is_valid(sv.buf) then
    local b = buf.scratch("cork://supervise")
    sv.buf = b
    buf.map(b, "a", function() sv_decide("approve", false) end, "cork: approve this request")
    buf.map(b, "x", function() sv_decide("deny", false) end, "cork: deny this request")
    buf.map(b, "A", function() sv_decide("approve", true) end, "cork: approve, with a note")
    buf.map(b, "X", function() sv_decide("deny", true) end, "cork: deny, with a note")
    buf.map(b, "r", function() sv_refresh(false) end, "cork: list again")
    buf.map(b, "q", "<cmd>close<CR>")
    -- the queue has no events: look again every few seconds while shown
    sv.timer = uv.new_timer()
    sv.timer:start(5000, 5000, vim.schedule_wrap(function()
      if sv.buf and vim.api.nvim_buf_is_valid(sv.buf) and vim.fn.bufwinid(sv.buf) ~= -1 and server.running() then
        sv_refresh(false)
      end
    end))
    vim.api.nvim_create_autocmd("BufWipeout", { buffer = b, callback = function()
      if sv.timer then sv.timer:stop(); sv.timer:close(); sv.timer = nil end
      sv.buf = nil
    end })
  end
  sv_refresh(true)
end

function M.supervise_state() return sv end

-- ---- completion --------------------------------------------------------------------

local SUB = { "cancel", "down", "ls", "plan", "recipes", "run", "supervise" }

local function names(method, key)
  local res = server.request_sync(method, nil, 5000)
  local out = {}
  for _, x in ipairs(res and res[key] or {}) do out[#out + 1] = type(x) == "table" and (x.name or x.slug) or x end
  return out
end

local function filter(list, lead)
  local out = {}
  for _, x in ipairs(list) do if x:sub(1, #lead) == lead then out[#out + 1] = x end end
  table.sort(out)
  return out
end

function M.complete(lead, line, pos)
  local before = line:sub(1, pos)
  local words = vim.split(before, "%s+", { trimempty = false })
  -- words[1] is the command; the last word is what is being completed
  local n = #words - 1
  if n <= 1 then return filter(SUB, lead) end
  local sub, prev = words[2], words[#words - 1]
  if prev == "--bottle" then return filter(names("manifests", "bottles"), lead) end
  if prev == "--agent" then return filter(names("manifests", "agents"), lead) end
  if sub == "run" and n == 2 then
    return filter(names("recipes", "recipes"), lead)
  elseif sub == "plan" and n == 2 then
    local list = names("manifests", "bottles")
    list[#list + 1] = "--agent"
    return filter(list, lead)
  elseif sub == "run" and lead:sub(1, 1) == "-" then
    return filter({ "--bottle", "--agent" }, lead)
  elseif sub == "down" or (sub == "supervise" and n == 2) then
    local list = {}
    if ls.watch then
      for slug in pairs(ls.rows) do list[#list + 1] = slug end
    else
      list = names("ls", "bottles")
    end
    return filter(list, lead)
  end
  return {}
end

-- ---- the command ----------------------------------------------------------------------

local HANDLERS = {
  recipes = function() M.recipes() end,
  plan = function(a) M.plan(a) end,
  run = function(a, bang) M.run(a, bang) end,
  cancel = function() M.cancel() end,
  ls = function() M.ls() end,
  down = function(a) M.down(a) end,
  supervise = function(a) M.supervise(a) end,
}

function M.command(o)
  -- fargs: split as Neovim does for -nargs=* ("\ " keeps a space in an argument)
  local args = o.fargs and vim.deepcopy(o.fargs) or vim.split(o.args or "", "%s+", { trimempty = true })
  local sub = table.remove(args, 1)
  local h = sub and HANDLERS[sub]
  if not h then
    return server.notify(("cork: usage: :Cork {%s}%s"):format(table.concat(SUB, "|"),
      sub and (" (no subcommand '" .. sub .. "')") or ""), L.ERROR)
  end
  local ok, err = pcall(h, args, o.bang)
  if not ok then server.notify("cork: " .. tostring(err), L.ERROR) end
end

function M.leave() server.stop() end

return M
