-- examples/add-tool: the stock launch flow plus a tool-install provisioning step after "ca"
--
-- usage: cork run examples/add-tool [docker|smolmachines] --bottle NAME [launch options]
--
-- The launch options are the stock recipe's (`cork help docker`,
-- `cork help smolmachines`); docker is the default.
--
-- A user recipe changes the stock provisioning steps (an ordered list of
-- named steps: ca, prompt, skills, git, supervise) and then runs the stock
-- recipe unchanged. Copy this file to a directory of your own, edit the
-- step, and run it with `CORK_PATH=DIR cork run NAME ...` (docs/recipes.md).
local provision = require "cork.provision"
local recipes = require "cork.recipes"

-- After "ca": the guest already trusts the bundle's CA, so a package manager
-- going through the bundle's proxy can verify TLS.
provision.steps:insert_after("ca", {
  name = "tools",
  run = function(ctx)
    -- a tool of our own: a script in /usr/local/bin, which is on the PATH of
    -- Debian-based agent images (the stand-in agent's PATH is /bin only: run
    -- it there as /usr/local/bin/cork-hello). ctx:write sends it through
    -- stdin, never an argv.
    ctx:write("/usr/local/bin/cork-hello", "#!/bin/sh\necho \"hello from $(id -un): installed by examples/add-tool\"\n",
      { mode = "0755" })
    -- packages, where the guest has a package manager (apt-get reads the
    -- proxy from the agent's env); the stand-in agent image has none
    local apt = ctx:exec({ "sh", "-c", "command -v apt-get" }, { check = false })
    if apt.status == 0 then
      ctx:exec({ "sh", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends ripgrep" })
    end
  end,
})

local argv = { ... }
local backend = "docker"
if argv[1] == "docker" or argv[1] == "smolmachines" then backend = table.remove(argv, 1) end
return recipes.run(backend, argv)
