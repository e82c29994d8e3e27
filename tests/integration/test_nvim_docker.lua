-- The Neovim plugin (editors/nvim) against the private engine: a headless
-- Neovim runs tests/nvim/test_ls_docker.lua (a detached docker launch seen
-- in :Cork ls, attached with <CR>, ended with d), whose TAP lines are
-- relayed here; then nothing is left: no cork process of that Neovim, no
-- container or network of the bottle, no state.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local root = os.getenv("CORK_ROOT")

local function have_nvim() return cork.proc.run({ "sh", "-c", "command -v nvim" }).status == 0 end
if not have_nvim() then cork.proc.run({ root .. "/tools/deps.sh", "nvim" }) end
if not have_nvim() then
  io.stderr:write("SKIP: ****** the Neovim plugin's Docker tests NOT RUN: nvim is not installed and could not be ******\n")
  T.skip_all("nvim is not installed and could not be installed (tools/deps.sh nvim)")
end

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_nvim_docker")
s:defer(function() H.sweep(d) end)
local h = R.home("nvim")
s:defer(cork.fs.remove, h.dir, { recursive = true })

local marker = ("CORK_NVIM_TEST=%d-%d"):format(cork.core.pid(), os.time())
local env = R.merge(h.env, { CORK_BIN = R.bin, CORK_ROOT = root, CORK_NVIM_TMP = h.dir,
  CORK_NVIM_TEST = marker:match("=(.*)"), XDG_DATA_HOME = h.dir .. "/data", CORK_PATH = false })
local r = cork.proc.run({ "nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n",
  "-c", "luafile " .. root .. "/tests/nvim/test_ls_docker.lua" }, { env = env, timeout = 400 })
for line in r.stdout:gmatch("[^\n]+") do
  local bad, name = line:match("^(n?o?t? ?ok) %- (.*)$")
  if bad then T.ok(bad == "ok", name) elseif line:sub(1, 1) == "#" then T.diag(line:sub(3)) end
end
T.is(r.status, 0, "nvim exited 0 after :qa", r.stderr)

-- no process of that Neovim left (the server, an ls watch, a launch)
local left = {}
for _, p in ipairs(cork.fs.list("/proc")) do
  if p:match("^%d+$") then
    local ok, e = pcall(cork.fs.read, "/proc/" .. p .. "/environ")
    if ok and ("\0" .. e):find("\0" .. marker .. "\0", 1, true) then left[#left + 1] = p end
  end
end
T.is(table.concat(left, " "), "", "no cork process left after :qa")
local okp, spid = pcall(cork.fs.read, h.dir .. "/server-pid")
T.ok(okp and tonumber(spid) and not cork.core.pid_alive(tonumber(spid)), "the server is gone")
local oks, slug = pcall(cork.fs.read, h.dir .. "/slug")
T.is(oks and R.engine_left(d, slug), 0, "nothing of the bottle left on the engine")
T.is(R.files(h.env.XDG_STATE_HOME), "", "no journal or state left")
H.no_leaks(T, d, before)
T.done()
