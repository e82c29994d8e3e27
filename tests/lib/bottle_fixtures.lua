-- bottle_fixtures.lua: copy tests/fixtures/manifest into a fresh temp dir
-- (outside the repository's working tree, which cork would refuse to load
-- bottles from) and give the env a test passes to cork.manifest / cork.plan.
--   local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
--   local fx <close> = F.setup()      -- fx.dir, fx.home, fx.cwd, fx.env
local fs = require "cork.fs"
local F = {}

F.root = os.getenv("CORK_ROOT") .. "/tests/fixtures/manifest"

local function copy_tree(src, dst)
  fs.mkdir(dst, tonumber("0700", 8))
  for _, name in ipairs(fs.list(src)) do
    local s, d = src .. "/" .. name, dst .. "/" .. name
    local st = fs.stat(s)
    if st.type == "directory" then copy_tree(s, d)
    else fs.write(d, fs.read(s), {mode = st.mode & tonumber("0777", 8)}) end
  end
end
F.copy_tree = copy_tree

-- Secret values used by the fixtures' ${...} references and token_refs.
F.secrets = {
  CORK_TEST_GITHUB_TOKEN = "ghp_FIXTURESECRETgithub0123456789abcdefABCD",
  CORK_TEST_ANTHROPIC_KEY = "sk-ant-FIXTURESECRET-anthropic-0123456789",
  CORK_TEST_SHARED = "shared-FIXTURESECRET-value",
  CORK_TEST_USER = "fixture-user-SECRET",
  CORK_TEST_HOST = "fixture-host-SECRET",
  -- named by the twins' egress routes (tests/fixtures/manifest/twins): set,
  -- so that `cork plan` has no unset variable to warn about
  CORK_TEST_GITEA_TOKEN = "gitea-FIXTURESECRET-token-0123456789",
  CORK_TEST_OPENAI_KEY = "sk-FIXTURESECRET-openai-0123456789",
}

function F.setup()
  local dir = fs.tempdir("cork-bottles-")
  copy_tree(F.root .. "/home", dir .. "/home")
  copy_tree(F.root .. "/cwd", dir .. "/cwd")
  local env = {HOME = dir .. "/home", PWD = dir .. "/cwd"}
  for k, v in pairs(F.secrets) do env[k] = v end
  return setmetatable({dir = dir, home = dir .. "/home", cwd = dir .. "/cwd", env = env},
    {__close = function(self) fs.remove(self.dir, {recursive = true}) end})
end

return F
