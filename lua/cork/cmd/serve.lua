-- cork serve --stdio: a long-lived control mode for editor tooling.
--
-- One JSON object per line in each direction (docs/embedding.md):
--   request   {"id": 1, "method": "ls", "params": {...}}
--   response  {"id": 1, "result": ...}  or  {"id": 1, "error": {"kind", "message", ...}}
--   event     an event of docs/events.md with "id": the request that caused it
--
-- Every method but `cancel` and `shutdown` runs as a child `cork --json ...`
-- whose events this loop reads without blocking (cork.proc readers), so the
-- server answers while launches run, and `cancel` is a SIGINT to the child:
-- the same safe-point unwinding as Ctrl-C. The events a method exists to
-- produce (`recipe`, `plan`, `bottle`, `down`, `attach_command`) are folded
-- into its result; the others (progress, warnings) are relayed, tagged.
local cork = require "cork"
local core = require "cork.core"
local json = require "cork.json"
local proc = require "cork.proc"
local fs = require "cork.fs"
local args = require "cork.args"

local USAGE = "cork serve --stdio [--end-on-exit] [--cork-bin PATH]"

local M = {}
M.PROTOCOL = 1

M.help = [[
usage: ]] .. USAGE .. [[


A control channel for editors: requests on stdin, responses and events on
stdout, one JSON object per line (see docs/embedding.md). Methods: recipes,
manifests, plan, run, ls (watch), down, attach_command, supervise_pending,
supervise_decide, cancel, shutdown.

  --stdio         speak the protocol on stdin/stdout (the only transport)
  --end-on-exit   at EOF (or SIGINT/SIGTERM), end what this session started:
                  cancel requests in progress and `cork down` the bottles its
                  runs launched. Without it, launches in progress carry on
                  and launched bottles keep running.
  --cork-bin PATH the cork executable that runs each request (default: this
                  one; set it when cork is embedded in another program)

Stdout belongs to the protocol: the global --json is refused.]]

-- ---- JSON out: lists stay lists even when empty ----------------------------

local ARRAY = { __name = "cork.serve.array" }
local function array(t) return setmetatable(t or {}, ARRAY) end

-- Strings go out as valid UTF-8 whatever came in (a request's bytes are
-- echoed in error messages): each invalid byte becomes U+FFFD.
local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while true do
    local n, bad = utf8.len(s, i)
    if n then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end
M.utf8_clean = utf8_clean

-- Numbers exactly: integers (and integral floats up to 2^53, what a JSON
-- reader keeps exact) with every digit, other floats with 17 significant
-- digits (lua-cjson's encoder keeps 14).
local function number(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  local i = math.tointeger(v)
  if i and math.abs(v) <= 2 ^ 53 then return ("%d"):format(i) end
  return ("%.17g"):format(v)
end

local function encode(v)
  if type(v) == "string" then return json.encode(utf8_clean(v)) end
  if type(v) == "number" then return number(v) end
  if type(v) ~= "table" then return json.encode(v) end
  local n, parts = #v, {}
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if getmetatable(v) == ARRAY or (n > 0 and count == n) then
    for i = 1, n do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for k, x in pairs(v) do
    parts[#parts + 1] = encode(type(k) == "number" and number(k) or tostring(k)) .. ":" .. encode(x)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
M.encode = encode

-- ---- the methods ------------------------------------------------------------
-- params: name -> "string" | "boolean" | "strings" (list of strings) | "id"
-- argv(params) -> the cork command line after `cork --json`
-- collect: the event folded into the result; result(items, job) -> result

-- A collected event as a result item. Its own `id` stays: the child's
-- events are not tagged (only relayed ones are), so an `id` there is the
-- item's (a supervise request's id), and inside a result it clashes with
-- nothing.
local function strip(ev)
  local item = {}
  for k, v in pairs(ev) do
    if k ~= "ts" and k ~= "event" and k ~= "level" and k ~= "step" then item[k] = v end
  end
  return item
end

local methods = {}

methods.recipes = {
  params = {},
  argv = function() return { "recipes" } end,
  collect = "recipe",
  result = function(items) return { recipes = array(items) } end,
}

methods.plan = {
  params = { bottle = "string", agent = "string", contents = "boolean", no_docker = "boolean" },
  argv = function(p)
    local a = { "plan" }
    if p.bottle then a[#a + 1] = "--bottle"; a[#a + 1] = p.bottle end
    if p.agent then a[#a + 1] = "--agent"; a[#a + 1] = p.agent end
    if p.contents then a[#a + 1] = "--contents" end
    if p.no_docker then a[#a + 1] = "--no-docker" end
    return a
  end,
  collect = "plan",
  result = function(items) return { plan = items[1] and items[1].plan or json.null } end,
}

-- `ls` with watch = true streams instead: `cork ls --watch`, whose `bottle`
-- (new or changed) and `bottle_gone` events are relayed until `cancel`; a
-- watch never outlives the session (shutdown and EOF cancel it).
local ls_watch = {
  argv = function(p)
    local a = { "ls", "--watch" }
    if p.interval then a[#a + 1] = "--interval"; a[#a + 1] = tostring(p.interval) end
    return a
  end,
  streams = true,
  session = true,
}

methods.ls = {
  params = { watch = "boolean", interval = "number" },
  check = function(p)
    if p.interval ~= nil and not p.watch then return "interval needs watch = true" end
  end,
  variant = function(p) if p.watch then return ls_watch end end,
  argv = function() return { "ls" } end,
  collect = "bottle",
  result = function(items)
    for _, b in ipairs(items) do
      b.containers, b.networks, b.volumes = array(b.containers), array(b.networks), array(b.volumes)
    end
    return { bottles = array(items) }
  end,
}

-- The bottle and agent names cork can find (what `--bottle` and `--agent`
-- accept), read in the server itself: editors complete them.
methods.manifests = {
  params = {},
  local_ = true,
  run = function()
    local manifest = require "cork.manifest"
    return { bottles = array(manifest.list("bottle")), agents = array(manifest.list("agent")) }
  end,
}

methods.down = {
  params = { slugs = "strings", all = "boolean" },
  check = function(p)
    if p.all and p.slugs then return "give slugs or all, not both" end
    if not p.all and (not p.slugs or #p.slugs == 0) then return "down needs slugs (a list) or all = true" end
  end,
  argv = function(p)
    local a = { "down" }
    if p.all then a[#a + 1] = "--all"; return a end
    a[#a + 1] = "--"
    for _, s in ipairs(p.slugs) do a[#a + 1] = s end
    return a
  end,
  collect = "down",
  result = function(items)
    for _, d in ipairs(items) do d.removed, d.already_gone = array(d.removed), array(d.already_gone) end
    return { down = array(items) }
  end,
}

methods.attach_command = {
  params = { slug = "string" },
  required = { "slug" },
  argv = function(p) return { "attach", "--", p.slug } end,
  collect = "attach_command",
  result = function(items)
    local it = items[1] or {}
    return { slug = it.slug, argv = array(it.argv) }
  end,
}

methods.run = {
  params = { recipe = "string", args = "strings", detach = "boolean" },
  required = { "recipe" },
  -- the command line would read "-x" as a global flag of cork's own
  check = function(p)
    if p.recipe == "" or p.recipe:sub(1, 1) == "-" then
      return "recipe must be a recipe name or path, not empty or starting with '-'"
    end
  end,
  argv = function(p)
    local a = { "run", p.recipe }
    for _, x in ipairs(p.args or {}) do a[#a + 1] = x end
    if p.detach ~= false then a[#a + 1] = "--detach" end
    return a
  end,
  streams = true,   -- answered at once; the end is a `finished` event
}

-- the supervise queue, so an editor can show approvals
methods.supervise_pending = {
  params = { slug = "string" },
  argv = function(p) return p.slug and { "supervise", "--", p.slug } or { "supervise" } end,
  collect = "supervise_request",
  result = function(items) return { requests = array(items) } end,
}

methods.supervise_decide = {
  params = { id = "string", decision = "string", note = "string" },
  required = { "id", "decision" },
  check = function(p)
    if p.decision ~= "approve" and p.decision ~= "deny" then return "decision is approve or deny" end
  end,
  argv = function(p)
    local a = { "supervise", p.decision, "--", p.id }
    if p.note then table.insert(a, 3, "--note"); table.insert(a, 4, p.note) end
    return a
  end,
  collect = "supervise_decision",
  result = function(items) return items[1] or {} end,
}

methods.cancel = { params = { id = "id" }, required = { "id" }, local_ = true }
methods.shutdown = { params = { ["end"] = "boolean" }, local_ = true }

-- A request id: a string, or a finite number (lua-cjson reads nan and inf,
-- which no JSON encoder writes back).
local function valid_id(v)
  return type(v) == "string" or (type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge)
end

local function check_params(spec, params)
  for k, v in pairs(params) do
    local want = type(k) == "string" and spec.params[k]
    if not want then return ("unknown param '%s'"):format(tostring(k)) end
    local ok
    if want == "strings" then
      ok = type(v) == "table"
      if ok then
        local n = 0
        for _ in pairs(v) do n = n + 1 end
        ok = n == #v
        for _, x in ipairs(v) do ok = ok and type(x) == "string" end
      end
      want = "a list of strings"
    elseif want == "id" then
      ok = valid_id(v)
      want = "a string or a finite number"
    else
      ok = type(v) == want
      want = "a " .. want
    end
    if not ok then return ("param '%s' must be %s"):format(k, want) end
  end
  for _, k in ipairs(spec.required or {}) do
    if params[k] == nil then return ("missing param '%s'"):format(k) end
  end
  if spec.check then return spec.check(params) end
end

-- ---- the server ---------------------------------------------------------

local Server = {}
Server.__index = Server

local function key_of(id) return type(id) .. ":" .. (type(id) == "number" and number(id) or tostring(id)) end

function Server.new(o)
  return setmetatable({
    cork_bin = o.cork_bin, end_on_exit = o.end_on_exit,
    verbose = core.settings().verbose, lua_path = core.settings().lua_path or "",
    stdin = proc.stdin(), jobs = {}, by_key = {}, launched = {}, launched_order = {},
    out_ok = true, done = false,
  }, Server)
end

function Server:send(text)
  if not self.out_ok then return end
  local ok = io.stdout:write(text, "\n")
  if ok then ok = io.stdout:flush() end
  if not ok then self.out_ok = false end   -- the client is gone: shut down at the next turn
end

function Server:respond(id, result) self:send(encode({ id = id, result = result })) end

function Server:fail(id, kind, message, extra)
  local e = { kind = kind, message = message }
  for k, v in pairs(extra or {}) do e[k] = v end
  self:send(encode({ id = id == nil and json.null or id, error = e }))
end

-- An event of our own, shaped like the runtime's.
function Server:event(id, name, level, msg, fields)
  local ev = { id = id == nil and json.null or id, ts = core.wall_time(), event = name, level = level, msg = msg }
  for k, v in pairs(fields or {}) do ev[k] = v end
  self:send(encode(ev))
end

-- A child's event line, relayed with the request id in front of its fields
-- (the child's bytes otherwise untouched).
function Server:relay(id, line)
  local tag = '{"id":' .. encode(id == nil and json.null or id)
  if not utf8.len(line) then
    -- bytes that are not UTF-8 would make the line invalid JSON text: re-encode
    local ok, ev = pcall(json.decode, line)
    line = ok and type(ev) == "table" and encode(ev) or encode({ msg = line })
  end
  if line == "{}" then self:send(tag .. "}") else self:send(tag .. "," .. line:sub(2)) end
end

function Server:start(id, method, spec, params)
  local argv = { self.cork_bin, "--json" }
  if self.verbose then argv[#argv + 1] = "-v" end
  for _, a in ipairs(spec.argv(params)) do argv[#argv + 1] = a end
  -- CORK_SERVE_PID: a child that belongs to the session (an `ls` watch)
  -- ends when the server is gone, even killed outright
  local ok, p = pcall(proc.spawn, argv, { stdout = "pipe",
    env = { CORK_PATH = self.lua_path, CORK_SERVE_PID = tostring(core.pid()) } })
  if not ok then
    local e = p
    return self:fail(id, cork.is_error(e) and e.kind or "exec", cork.is_error(e) and e.message or tostring(e))
  end
  local job = { id = id, key = key_of(id), method = method, spec = spec, proc = p, out = p:stdout(),
    items = {}, started = cork.time() }
  self.jobs[#self.jobs + 1] = job
  self.by_key[job.key] = job
  if spec.streams then
    local shown = {}
    for i = 2, #argv do shown[#shown + 1] = argv[i] end
    self:respond(id, { pid = p:pid(), argv = array(shown) })
  end
  return job
end

function Server:on_line(job, line)
  local ok, ev = pcall(json.decode, line)
  if not ok or type(ev) ~= "table" or line:sub(1, 1) ~= "{" then
    -- not an event: something the recipe printed
    return self:event(job.id, "output", "info", line)
  end
  if job.spec.collect and ev.event == job.spec.collect then
    job.items[#job.items + 1] = strip(ev)
    return
  end
  if ev.event == "failed" then
    job.failed = ev
    if not job.spec.streams then return end   -- the error response carries it
  end
  if ev.event == "bottle_ready" and type(ev.slug) == "string" then
    job.slug = ev.slug
    if not self.launched[ev.slug] then
      self.launched[ev.slug] = true
      self.launched_order[#self.launched_order + 1] = ev.slug
    end
  end
  self:relay(job.id, line)
end

function Server:finish(job, status)
  local code = status.status or 1
  for i, j in ipairs(self.jobs) do if j == job then table.remove(self.jobs, i); break end end
  self.by_key[job.key] = nil
  if job.out then job.out:close(); job.out = nil end
  if job.silent then return end
  local failed = job.failed or {}
  local kind = failed.kind or (code == 130 and "interrupted") or (code == 2 and "usage") or (code ~= 0 and "failed") or nil
  if job.spec.streams then
    local st = code == 0 and "ok" or code == 130 and "interrupted" or code == 2 and "usage" or "failed"
    self:event(job.id, "finished", code == 0 and "info" or "error",
      ("%s %s (exit %d)"):format(job.method, st == "ok" and "finished" or st, code),
      { exit_code = code, status = st, kind = kind, slug = job.slug, cancelled = job.cancelled or nil })
  elseif code == 0 then
    self:respond(job.id, job.spec.result(job.items, job))
  else
    self:fail(job.id, kind, failed.msg or ("cork %s exited with status %d"):format(job.method, code),
      { exit_code = code })
  end
end

-- Read what a job's child wrote; reap it once it is gone.
function Server:pump_job(job)
  while job.out do
    local line, why = job.out:read_line(0)
    if line then self:on_line(job, line)
    elseif why == "eof" then job.out:close(); job.out = nil
    elseif why == "too_long" then self:event(job.id, "output_dropped", "warn", "an event line over 16 MiB was dropped")
    else break end
  end
end

function Server:reap()
  for _, job in ipairs({ table.unpack(self.jobs) }) do
    if not job.proc:running() then
      -- gone: read what it left in the pipe (not waiting on a grandchild
      -- that may hold the pipe open), then answer
      self:pump_job(job)
      self:finish(job, job.proc:wait())
    end
  end
end

-- How long a poll may sleep: a job whose pipe has ended is about to exit
-- (the pipe closes a moment before the child can be reaped), so look again
-- soon; otherwise wake a few times a second to notice exits that keep
-- the pipe open (a grandchild holding it).
function Server:tick()
  for _, job in ipairs(self.jobs) do if not job.out then return 0.005 end end
  return 0.25
end

function Server:cancel_job(job)
  if job.cancelled then return false end
  job.cancelled = true
  job.proc:kill("INT")
  return true
end

function Server:handle(line)
  if line:match("^%s*$") then return end
  local ok, req = pcall(json.decode, line)
  if not ok then
    return self:fail(nil, "parse", "invalid JSON: " .. tostring(req):gsub("^.-:%d+: ", ""))
  end
  if type(req) ~= "table" or line:match("^%s*%[") then
    return self:fail(nil, "invalid_request", "a request is a JSON object {\"id\", \"method\", \"params\"}")
  end
  local id = req.id
  if not valid_id(id) then
    return self:fail(nil, "invalid_request", "request id must be a string or a finite number")
  end
  for k in pairs(req) do
    if k ~= "id" and k ~= "method" and k ~= "params" then
      return self:fail(id, "invalid_request", ("unknown field '%s' in request"):format(tostring(k)))
    end
  end
  if type(req.method) ~= "string" then return self:fail(id, "invalid_request", "request method must be a string") end
  local spec = methods[req.method]
  if not spec then return self:fail(id, "unknown_method", ("unknown method '%s'"):format(req.method)) end
  local params = req.params
  if params == nil or params == json.null then params = {} end
  if type(params) ~= "table" or (next(params) ~= nil and #params > 0) then
    return self:fail(id, "invalid_params", "params must be a JSON object")
  end
  local why = check_params(spec, params)
  if why then return self:fail(id, "invalid_params", ("%s: %s"):format(req.method, why)) end
  if self.by_key[key_of(id)] then
    return self:fail(id, "invalid_request", ("id %s is in use by a request in progress"):format(encode(id)))
  end
  if req.method == "cancel" then
    local job = self.by_key[key_of(params.id)]
    if not job then
      return self:fail(id, "not_found", ("no request %s in progress (a finished launch is ended with `down`)")
        :format(encode(params.id)))
    end
    self:cancel_job(job)
    return self:respond(id, { cancelled = true })
  elseif req.method == "shutdown" then
    return self:shutdown(id, params["end"] == true)
  elseif spec.run then
    return self:respond(id, spec.run(params))
  end
  if spec.variant then spec = spec.variant(params) or spec end
  self:start(id, req.method, spec, params)
end

-- One request; a bug in handling it is answered, not fatal to the server.
function Server:handle_safely(line)
  local ok, err = pcall(self.handle, self, line)
  if ok then return end
  if cork.is_error(err, "interrupted") then error(err, 0) end
  local okd, req = pcall(json.decode, line)
  local id = okd and type(req) == "table" and valid_id(req.id) and req.id or nil
  self:fail(id, "internal", "cork serve failed on this request: " .. (cork.is_error(err) and err.message or tostring(err)))
end

function Server:read_requests()
  while self.stdin and not self.done do
    local line, why = self.stdin:read_line(0)
    if line then self:handle_safely(line)
    elseif why == "eof" then return self:shutdown(nil, self.end_on_exit)
    elseif why == "too_long" then self:fail(nil, "parse", "request line over 16 MiB dropped")
    else return end
  end
end

-- Run until the jobs are done (no more requests are read).
function Server:drain()
  while #self.jobs > 0 do
    local readers = {}
    for _, job in ipairs(self.jobs) do if job.out then readers[#readers + 1] = job.out end end
    local ready = proc.poll(readers, self:tick())
    for _, job in ipairs({ table.unpack(self.jobs) }) do
      for _, r in ipairs(ready) do if r == job.out then self:pump_job(job) end end
    end
    self:reap()
  end
end

-- Stop reading; end what this session started when asked (cancel what is
-- in progress, `down` the bottles its runs launched), else leave launches
-- to carry on; wait for the rest; answer `shutdown` last. Safe to call
-- again: a signal that cuts a `shutdown` request's wait short lands in the
-- serve scope's cleanup, which calls it again to finish the job
-- (uninterruptibly) rather than abandon children half-relayed.
function Server:shutdown(id, end_all)
  local sd = self.sd
  if not sd then
    sd = { id = id, cancelled = array(), left = array(), ended = array() }
    self.sd = sd
  end
  if sd.finished then return end
  sd.end_all = sd.end_all or end_all
  self.done = true
  self.stdin = nil
  for _, job in ipairs({ table.unpack(self.jobs) }) do
    if sd.end_all or job.spec.session then
      if self:cancel_job(job) then sd.cancelled[#sd.cancelled + 1] = job.id end
    elseif job.spec.streams then
      -- a launch in progress carries on without us
      job.proc:release()
      if job.out then job.out:close(); job.out = nil end
      for i, j in ipairs(self.jobs) do if j == job then table.remove(self.jobs, i); break end end
      self.by_key[job.key] = nil
      sd.left[#sd.left + 1] = job.id
    end
  end
  self:drain()
  if sd.end_all and #self.launched_order > 0 and not sd.down_started then
    sd.down_started = true
    local job = self:start(sd.id, "down", methods.down, { slugs = self.launched_order })
    if job then
      job.silent = true   -- its `down` items go into the shutdown answer
      sd.down_job = job
    end
  end
  self:drain()
  if sd.down_job then
    for _, d in ipairs(sd.down_job.items) do sd.ended[#sd.ended + 1] = d.slug end
  end
  sd.finished = true
  if sd.id ~= nil then self:respond(sd.id, { cancelled = sd.cancelled, left_running = sd.left, ended = sd.ended }) end
end

function Server:loop()
  while not self.done do
    if not self.out_ok then return self:shutdown(nil, self.end_on_exit) end
    local readers = { self.stdin }
    for _, job in ipairs(self.jobs) do if job.out then readers[#readers + 1] = job.out end end
    local ready = proc.poll(readers, self:tick())
    for _, r in ipairs(ready) do
      if r == self.stdin then self:read_requests()
      else
        for _, job in ipairs(self.jobs) do if job.out == r then self:pump_job(job); break end end
      end
    end
    self:reap()
  end
end

local function default_bin()
  if fs.exists("/proc/self/exe") then return "/proc/self/exe" end
  return "cork"
end

function M.main(argv)
  local opts, rest = args.parse(argv, { stdio = "boolean", end_on_exit = "boolean", cork_bin = "string" },
    { usage = USAGE })
  if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end
  if not opts.stdio then cork.error("usage", "serve needs --stdio (the only transport)\nusage: " .. USAGE) end
  if core.settings().json then
    cork.error("usage", "serve speaks JSON on stdout already: drop the global --json")
  end
  local server = Server.new({ cork_bin = opts.cork_bin or default_bin(), end_on_exit = opts.end_on_exit })
  -- Whatever ends the loop (EOF, `shutdown`, a signal, a bug), the shutdown
  -- runs as a cleanup: uninterruptible, so children are never orphaned
  -- half-relayed, and never killed unless ending them was asked for.
  local s <close> = cork.scope("serve")
  s:defer(function() server:shutdown(nil, server.end_on_exit) end)
  server:loop()
  return 0
end

M.methods = methods
return M
