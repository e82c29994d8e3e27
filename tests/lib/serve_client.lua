-- serve_client.lua: drive `cork serve --stdio` through a pipe, checking
-- every line it writes against the protocol's schema (docs/embedding.md).
--   local C = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/serve_client.lua")
--   local s = C.start({ dir = tmp, env = env, cwd = dir, extra = { "--end-on-exit" } })
--   local r = s:request(1, "ls")           -- the response {id, result|error}
--   s:until_(function(m) ... end)          -- messages until one matches
--   s:find(function(m) ... end)            -- the first match, seen or to come
--   s:eof(); s:exit_status(); C.bad        -- schema violations seen so far
-- CORK_SERVE_WRAP="valgrind ..." runs the server under that command.
local cork = require "cork"
local json = require "cork.json"
local proc = cork.proc

local C = {}
C.bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")
C.wrap = {}
for w in (os.getenv("CORK_SERVE_WRAP") or ""):gmatch("%S+") do C.wrap[#C.wrap + 1] = w end
C.TIMEOUT = #C.wrap > 0 and 60 or 15
C.bad = {}

local LEVELS = { debug = true, info = true, step = true, warn = true, error = true }

local function is_id(v) return type(v) == "string" or type(v) == "number" or v == json.null end

-- Why msg is not a valid response or event (nil when it is).
function C.schema_error(msg)
  if type(msg) ~= "table" then return "not an object" end
  if not is_id(msg.id) then return "id missing or not a string/number/null" end
  if msg.result ~= nil or msg.error ~= nil then
    for k in pairs(msg) do
      if k ~= "id" and k ~= "result" and k ~= "error" then return "response has field " .. k end
    end
    if msg.result ~= nil and msg.error ~= nil then return "both result and error" end
    if msg.error ~= nil then
      local e = msg.error
      if type(e) ~= "table" or type(e.kind) ~= "string" or type(e.message) ~= "string" then
        return "error needs kind and message strings"
      end
      if e.exit_code ~= nil and (type(e.exit_code) ~= "number" or e.exit_code % 1 ~= 0) then
        return "exit_code not an integer"
      end
    end
    return nil
  end
  if type(msg.event) ~= "string" then return "neither a response nor an event" end
  if not LEVELS[msg.level] then return "event level " .. tostring(msg.level) end
  if type(msg.ts) ~= "number" then return "event ts" end
  if msg.msg ~= nil and type(msg.msg) ~= "string" then return "event msg" end
  if msg.id == json.null and msg.event ~= "info" and msg.event ~= "warn" and msg.event ~= "error" then
    return "untagged event " .. msg.event
  end
  return nil
end

local Server = {}
Server.__index = Server
local fifo_n = 0

-- o: dir (for the fifo and stderr file), env, cwd, extra (server flags)
function C.start(o)
  fifo_n = fifo_n + 1
  local fifo = ("%s/serve-in%d"):format(o.dir, fifo_n)
  proc.run({ "mkfifo", fifo })
  -- the shell opens the fifo as the server's stdin; our write end is opened
  -- after the spawn, so no child ever inherits it (EOF is ours to give)
  local argv = { "sh", "-c", 'exec "$@" < "$0"', fifo }
  for _, w in ipairs(C.wrap) do argv[#argv + 1] = w end
  argv[#argv + 1] = C.bin
  for _, a in ipairs({ "serve", "--stdio" }) do argv[#argv + 1] = a end
  if #C.wrap > 0 then argv[#argv + 1] = "--cork-bin"; argv[#argv + 1] = C.bin end
  for _, a in ipairs(o.extra or {}) do argv[#argv + 1] = a end
  -- stderr (the children's human warnings) to a file: prove's output stays TAP
  local p = proc.spawn(argv, { stdout = "pipe", stderr = o.dir .. "/stderr", env = o.env, cwd = o.cwd })
  local w = assert(io.open(fifo, "w"))
  return setmetatable({ p = p, w = w, out = p:stdout(), seen = {}, raw = {} }, Server)
end

function Server:send(v)
  self.w:write(type(v) == "string" and v or json.encode(v), "\n")
  self.w:flush()
end

-- The next message (decoded and schema-checked), or nil at timeout/EOF.
function Server:recv(timeout)
  local line, why = self.out:read_line(timeout or C.TIMEOUT)
  if not line then return nil, why end
  self.raw[#self.raw + 1] = line
  local ok, msg = pcall(json.decode, line)
  if not ok then C.bad[#C.bad + 1] = "unparsable: " .. line; return self:recv(timeout) end
  local err = C.schema_error(msg)
  if err then C.bad[#C.bad + 1] = err .. ": " .. line end
  self.seen[#self.seen + 1] = msg
  return msg
end

-- Messages until pred(msg) is true; returns that message and all of them.
function Server:until_(pred, timeout)
  local all = {}
  while true do
    local m, why = self:recv(timeout)
    if not m then return nil, all, why end
    all[#all + 1] = m
    if pred(m) then return m, all end
  end
end

-- The first message matching pred, among those already seen or to come.
function Server:find(pred, timeout)
  for _, m in ipairs(self.seen) do if pred(m) then return m end end
  return (self:until_(pred, timeout))
end

function Server:response(id, timeout)
  return self:until_(function(m) return m.id == id and (m.result ~= nil or m.error ~= nil) end, timeout)
end

function Server:request(id, method, params, timeout)
  self:send({ id = id, method = method, params = params })
  return self:response(id, timeout)
end

function Server:eof() if self.w then self.w:close(); self.w = nil end end

function Server:exit_status()
  self:eof()
  local st = self.p:wait(C.TIMEOUT)
  return st and st.status
end

function C.events_of(list, id, name)
  local out = {}
  for _, m in ipairs(list) do if m.id == id and m.event == name then out[#out + 1] = m end end
  return out
end

return C
