-- cork.dryrun: the Docker and smolvm clients of a launch: the real ones,
-- or, with --dry-run, recorders that print every call that would change
-- something (reads still go to the real client when there is one).
local log = require "cork.log"
local json = require "cork.json"

local M = {}

-- ---- dry run: record what would be done -----------------------------------

local function redact_env(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if k == "env" and type(x) == "table" then
      local e = {}
      for ek, ev in pairs(x) do e[ek] = type(ev) == "string" and log.redact(ev) or ev end
      out[k] = e
    else
      out[k] = redact_env(x)
    end
  end
  return setmetatable(out, getmetatable(v))   -- a list stays a list
end

-- A stand-in for a client: reads go to `real` (when given), every other
-- call is printed and answered from `answers`.
function M.recorder(label, real, reads, answers)
  local self = {}
  return setmetatable(self, { __index = function(_, method)
    if reads[method] and real then
      return function(_, ...) return real[method](real, ...) end
    end
    return function(_, ...)
      local a = table.pack(...)
      local shown = json.array()   -- "args": [] when there are none, never {}
      for i = 1, a.n do shown[i] = redact_env(a[i]) end
      local ok, text = pcall(json.encode, shown)
      log.info(("would call %s.%s %s"):format(label, method, ok and text or "(...)"))
      log.event("dry_run", { call = label .. "." .. method, args = shown })
      local ans = answers[method]
      if type(ans) == "function" then return ans(...) end
      return ans
    end
  end })
end

function M.docker(opts)
  local docker = require "cork.docker"
  if not opts.dry_run then return docker.connect() end
  local ok, real = pcall(docker.connect, { timeout = 5, connect_timeout = 1 })
  return M.recorder("docker", ok and real or nil,
    { containers = true, networks = true, image_inspect = true, ping = true, version = true },
    {
      network_create = { Id = "<dry-run>" }, container_create = { Id = "<dry-run>" },
      host_port = function(_, port) return port end,
      exec = { status = 0, stdout = "", stderr = "" },
      containers = {}, networks = {}, image_inspect = { Id = "<dry-run>" },
      container_inspect = { Id = "<dry-run>" }, container_wait = { status = 0 },
      request = { status = 201, body = { Id = "<dry-run>" } },
    })
end

function M.smolvm(opts)
  local smolvm = require "cork.smolvm"
  local real = smolvm.driver({ env = opts.smolvm_env })
  if not opts.dry_run then return real end
  local rec = M.recorder("smolvm", real, { version = true, capabilities = true, ls = true, status = true },
    { exec = { status = 0, stdout = "", stderr = "" }, wait_ready = { attempts = 1, elapsed = 0 },
      create = { name = "<dry-run>" } })
  -- a field, not a method: the attach argv (journalled as JSON) names it
  rawset(rec, "binary", real.binary)
  return rec
end

return M
