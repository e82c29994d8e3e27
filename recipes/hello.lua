-- hello: a tiny recipe that exercises scopes, steps and events
--
-- Usage: cork run hello [--name NAME] [--steps N] [--pause SECONDS] [--fail-at N]
--                       [--cleanup-fails N] [--marker FILE]
-- Each step registers a cleanup on the launch scope; whatever ends the run
-- (success, an error, Ctrl-C, SIGTERM), the cleanups run in reverse order.
-- --marker FILE appends one line per cleanup, so tests can check they ran.
local args = require "cork.args"
local log = require "cork.log"
local fs = require "cork.fs"

local opts = args.parse({ ... }, {
  name = "string", steps = "number", pause = "number", fail_at = "number",
  cleanup_fails = "number", marker = "string", help = "boolean",
}, { usage = "cork run hello [--name NAME] [--steps N] [--pause S] [--fail-at N] [--cleanup-fails N] [--marker FILE]" })

if opts.help then
  print("usage: cork run hello [--name NAME] [--steps N] [--pause S] [--fail-at N] [--cleanup-fails N] [--marker FILE]")
  return 0
end

local name = opts.name or "world"
local steps = opts.steps or 3

local function note(line)
  if opts.marker then
    local old = fs.exists(opts.marker) and fs.read(opts.marker) or ""
    fs.write(opts.marker, old .. line .. "\n", { mode = "0600" })
  end
end

local s <close> = cork.scope("hello")

for i = 1, steps do
  -- A step acquires something; its cleanup is registered right away.
  log.step(("step %d of %d"):format(i, steps), { index = i })
  s:defer(function(err)
    if opts.cleanup_fails == i then error(("cleanup %d failed on purpose"):format(i)) end
    note(("cleanup %d%s"):format(i, err and (" after: " .. tostring(err.kind or err)) or ""))
    log.info(("undid step %d"):format(i))
  end)
  log.event("resource", { index = i, name = ("thing-%d"):format(i) })
  if opts.fail_at == i then cork.error("demo", ("step %d failed on purpose"):format(i)) end
  if opts.pause then cork.sleep(opts.pause) end
end

log.info(("hello, %s"):format(name))
