-- cork.bottle: kept for recipes written against it. A bottle is the
-- manifest object (cork.manifest); what this module held lives where it
-- belongs, and is the same functions here:
--   cork.launch    OPTIONS, parse, inline, load, fault, step, env_file,
--                  with_env_file
--   cork.dryrun    recorder, docker, smolvm (the clients, real or recorded)
--   cork.teardown  remove.{container,network,vm,alias}, down
local launch = require "cork.launch"
local dryrun = require "cork.dryrun"
local teardown = require "cork.teardown"

return {
  OPTIONS = launch.OPTIONS, parse = launch.parse, inline = launch.inline, load = launch.load,
  fault = launch.fault, step = launch.step, env_file = launch.env_file, with_env_file = launch.with_env_file,
  recorder = dryrun.recorder, docker = dryrun.docker, smolvm = dryrun.smolvm,
  remove = teardown.remove, down = teardown.down,
}
