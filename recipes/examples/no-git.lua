-- examples/no-git: the stock launch flow without the git provisioning step
--
-- usage: cork run examples/no-git [docker|smolmachines] --bottle NAME [launch options]
--
-- The launch options are the stock recipe's (`cork help docker`,
-- `cork help smolmachines`); docker is the default.
--
-- For an agent image without git, or a bottle whose agent should get no git
-- identity and no git-gate rewrites. Removing a step that does not exist is
-- an error (kind usage) listing the steps there are.
local provision = require "cork.provision"
local recipes = require "cork.recipes"

provision.steps:remove("git")

local argv = { ... }
local backend = "docker"
if argv[1] == "docker" or argv[1] == "smolmachines" then backend = table.remove(argv, 1) end
return recipes.run(backend, argv)
