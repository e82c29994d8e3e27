-- cork_nvim.server: the one `cork serve --stdio` of this Neovim.
--
-- Started on first use, stopped on VimLeavePre (stdin closed: the server's
-- EOF; launches in progress carry on unless end_on_exit), restarted with a
-- message if it dies. Requests are JSON lines; answers and events come back
-- tagged with the request's id (docs/embedding.md in cork's tree).
--
-- Only APIs of Neovim 0.7 are used (jobstart, chansend, vim.json, vim.loop),
-- or guarded where a later release deprecates them.
local M = {}

local config = {
  cmd = nil,            -- argv prefix of cork, default { vim.g.cork_bin or "cork" }
  end_on_exit = false,  -- pass --end-on-exit: quitting Neovim ends this session's launches
  timeout = 10000,      -- ms a synchronous request (completion) waits at most
}

local st = {
  job = nil,            -- job id of the server
  pid = nil,
  seq = 0,              -- request ids: "nvim-<seq>"
  pending = {},         -- id -> request (method, on_result, on_event, stream)
  partial = "",         -- an unfinished stdout line
  stderr = {},          -- the server's last human lines (warnings), for messages
  answered = false,     -- the server wrote a line: it is a working cork serve
  stopping = false,
  restarts = {},        -- functions called after a restart (watches re-subscribe)
}

local function notify(msg, level)
  vim.schedule(function() vim.notify(msg, level or vim.log.levels.INFO, { title = "cork" }) end)
end
M.notify = notify

function M.configure(o)
  for k, v in pairs(o or {}) do
    if config[k] == nil and k ~= "cmd" then error(("cork_nvim: unknown option '%s'"):format(k), 0) end
    config[k] = v
  end
end

function M.config() return config end

local function argv0()
  local cmd = config.cmd or vim.g.cork_bin or "cork"
  if type(cmd) == "string" then cmd = { cmd } end
  return vim.deepcopy(cmd)
end

-- How a job ended, in words: "exit 3" or "killed by signal 9".
local function how(code)
  if code and code > 128 and code < 160 then return ("killed by signal %d"):format(code - 128) end
  return ("exit %s"):format(tostring(code))
end

-- ---- messages in ------------------------------------------------------------

local function dispatch(line)
  if line == "" then return end
  st.answered = true
  local ok, msg = pcall(vim.json.decode, line)
  if not ok or type(msg) ~= "table" then
    notify(("cork: the server wrote something that is not JSON: %s"):format(line:sub(1, 200)), vim.log.levels.WARN)
    return
  end
  local id = msg.id
  local req = id ~= nil and id ~= vim.NIL and st.pending[id] or nil
  if msg.result ~= nil or msg.error ~= nil then
    if not req then
      if msg.error ~= nil and type(msg.error) == "table" then
        notify(("cork: %s (%s)"):format(tostring(msg.error.message), tostring(msg.error.kind)), vim.log.levels.ERROR)
      end
      return
    end
    local err = msg.error ~= nil and msg.error ~= vim.NIL and msg.error or nil
    if err or not req.stream then st.pending[id] = nil end
    if req.on_result then req.on_result(err, msg.result) end
    return
  end
  if type(msg.event) ~= "string" then return end
  if req then
    if msg.event == "finished" then st.pending[id] = nil end
    if req.on_event then req.on_event(msg) end
  elseif msg.level == "warn" or msg.level == "error" then
    -- what the server does on its own (ending launches at EOF)
    notify("cork: " .. tostring(msg.msg or msg.event),
      msg.level == "error" and vim.log.levels.ERROR or vim.log.levels.WARN)
  end
end

local function on_stdout(job, data)
  if job ~= st.job then return end
  data[1] = st.partial .. data[1]
  st.partial = data[#data]
  for i = 1, #data - 1 do
    local ok, err = pcall(dispatch, data[i])
    if not ok then notify("cork: a handler failed: " .. tostring(err), vim.log.levels.ERROR) end
  end
end

local function on_stderr(job, data)
  if job ~= st.job then return end
  for _, l in ipairs(data) do
    if l ~= "" then
      st.stderr[#st.stderr + 1] = l
      if #st.stderr > 20 then table.remove(st.stderr, 1) end
    end
  end
end

-- Every request in flight learns the server is gone (a run's buffer says so).
local function fail_pending(why)
  local pending = st.pending
  st.pending = {}
  for _, req in pairs(pending) do
    local err = { kind = "server_died", message = why }
    if req.on_lost then pcall(req.on_lost, err)
    elseif req.on_result then pcall(req.on_result, err, nil) end
  end
end

local start

local function on_exit(job, code)
  if job ~= st.job then return end
  local pid, answered = st.pid, st.answered
  st.job, st.pid, st.partial = nil, nil, ""
  if st.stopping then return end
  local last = st.stderr[#st.stderr]
  if not answered then
    -- it never worked (not a cork, an old one, a broken install): one
    -- message, and no restart loop; the next command tries again
    fail_pending("cork serve is not running")
    notify(("cork: `%s serve --stdio` exited without answering (%s)%s"):format(table.concat(argv0(), " "), how(code),
      last and (": " .. last) or ""), vim.log.levels.ERROR)
    return
  end
  fail_pending(("the cork server died (%s)"):format(how(code)))
  if start() then
    notify(("cork: the server (pid %d) died (%s); restarted it (pid %d)"):format(pid, how(code), st.pid),
      vim.log.levels.WARN)
    for _, f in ipairs(st.restarts) do pcall(f) end
  end
end

-- ---- the server's life --------------------------------------------------------

start = function()
  if st.job then return true end
  local argv = argv0()
  if vim.fn.executable(argv[1]) ~= 1 then
    notify(("cork: cannot run '%s': not found or not executable (set g:cork_bin, or cmd in require('cork_nvim').setup)")
      :format(argv[1]), vim.log.levels.ERROR)
    return false
  end
  vim.list_extend(argv, { "serve", "--stdio" })
  if config.end_on_exit then argv[#argv + 1] = "--end-on-exit" end
  st.stderr, st.partial, st.stopping = {}, "", false
  local ok, job = pcall(vim.fn.jobstart, argv, {
    on_stdout = on_stdout, on_stderr = on_stderr, on_exit = on_exit,
  })
  if not ok or type(job) ~= "number" or job <= 0 then
    notify(("cork: could not start `%s`: %s"):format(table.concat(argv, " "), ok and ("jobstart returned " .. tostring(job)) or tostring(job)),
      vim.log.levels.ERROR)
    return false
  end
  st.job, st.pid, st.answered = job, vim.fn.jobpid(job), false
  return true
end
M.start = start

function M.running() return st.job ~= nil end
function M.pid() return st.pid end

-- Called after the server was restarted (watches subscribe again).
function M.on_restart(f) st.restarts[#st.restarts + 1] = f end

-- Stop it: close its stdin (EOF: it ends cleanly), wait, then SIGTERM.
function M.stop(wait_ms)
  local job = st.job
  if not job then return end
  st.stopping = true
  pcall(vim.fn.chanclose, job, "stdin")
  local r = vim.fn.jobwait({ job }, wait_ms or 5000)
  if r[1] == -1 then
    pcall(vim.fn.jobstop, job)
    vim.fn.jobwait({ job }, 3000)
  end
  st.job, st.pid = nil, nil
  fail_pending("the cork server was stopped")
end

-- ---- requests -----------------------------------------------------------------

-- request(method, params, o) -> id, or nil when the server cannot run.
--   o.on_result(err, result)  the answer (for a stream: the start, or its error)
--   o.on_event(ev)            events tagged with this request (a stream ends with `finished`)
--   o.on_lost(err)            the server died before the request ended (default: on_result)
--   o.stream                  the request streams (run, ls watch): kept until `finished`
function M.request(method, params, o)
  o = o or {}
  if not start() then return nil end
  st.seq = st.seq + 1
  local id = "nvim-" .. st.seq
  local line = vim.json.encode({ id = id, method = method, params = params or vim.empty_dict() })
  st.pending[id] = { method = method, on_result = o.on_result, on_event = o.on_event, on_lost = o.on_lost,
    stream = o.stream }
  -- a write that fails means the server is exiting: its on_exit answers
  -- this request (with the one message about the server)
  pcall(vim.fn.chansend, st.job, line .. "\n")
  return id
end

-- The answer, waiting for it (completion needs it at once): result, err.
function M.request_sync(method, params, timeout)
  local done, res, err = false, nil, nil
  local id = M.request(method, params, { on_result = function(e, r) done, err, res = true, e, r end })
  if not id then return nil, { kind = "unavailable", message = "cork serve is not running" } end
  vim.wait(timeout or config.timeout, function() return done end, 10)
  if not done then
    st.pending[id] = nil
    return nil, { kind = "timeout", message = ("no answer to %s within %d ms"):format(method, timeout or config.timeout) }
  end
  return res, err
end

function M.cancel(id, on_result)
  return M.request("cancel", { id = id }, { on_result = on_result })
end

function M.in_progress(id) return st.pending[id] ~= nil end

return M
