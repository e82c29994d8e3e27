-- cork.artifacts: the cache of agents' VM artifacts (.smolmachine files).
--
-- `cork run prepare` packs an agent's container image into a .smolmachine
-- and keeps it here, keyed by the image's ID (the content digest Docker
-- reports, not its tag): an unchanged image is never packed twice, a
-- rebuilt image gets a new artifact. The smolmachines recipe looks here
-- when a bottle names no artifact of its own (agent.from / --from).
--
--   $XDG_CACHE_HOME/cork/smolmachines/<hex id>.smolmachine   the artifact
--   $XDG_CACHE_HOME/cork/smolmachines/<hex id>.json          what made it
--   $XDG_CACHE_HOME/cork/smolmachines/<hex id>.lock          one builder at a time
--   $XDG_CACHE_HOME/cork/smolmachines/refs/<image ref>       the ID last packed for a ref
--                                      (its older artifact is removed on a rebuild)
-- (~/.cache when XDG_CACHE_HOME is unset or not absolute)
local cork = require "cork"
local xdg = require "cork.xdg"
local fs = require "cork.fs"

local M = {}

function M.root()
  return xdg.home("cache") .. "/cork/smolmachines"
end

-- key(image_id) -> the hex digest of "sha256:<hex>" (or the ID as given
-- when it has no algorithm prefix); raises usage on anything else.
function M.key(id)
  local hex = type(id) == "string" and (id:match("^sha256:(%x+)$") or id:match("^(%x+)$"))
  if not hex or #hex < 12 then
    cork.error("usage", ("not an image ID: %s"):format(tostring(id)))
  end
  return hex:lower()
end

function M.path(id) return M.root() .. "/" .. M.key(id) .. ".smolmachine" end
function M.info_path(id) return M.root() .. "/" .. M.key(id) .. ".json" end
function M.lock_path(id) return M.root() .. "/" .. M.key(id) .. ".lock" end

-- find(id) -> path of the cached artifact, or nil
function M.find(id)
  local p = M.path(id)
  local st = fs.stat(p)
  if st and st.type == "file" then return p end
  return nil
end

-- for_image(docker, ref) -> path, id: the cached artifact of the image ref
-- (nil when the image is unknown to the engine or was never prepared)
function M.for_image(docker, ref)
  if type(ref) ~= "string" or ref == "" then return nil end
  local ok, info = pcall(docker.image_inspect, docker, ref)
  if not ok or type(info) ~= "table" or type(info.Id) ~= "string" then return nil end
  local okk = pcall(M.key, info.Id)
  if not okk then return nil end
  return M.find(info.Id), info.Id
end

local function ref_file(ref)
  return M.root() .. "/refs/" .. ref:gsub("[^%w%.%-_]", "_")
end

-- record(ref, id, info): the artifact of id is in place; remember what made
-- it, and drop the artifact an earlier ID of the same ref left. Returns the
-- replaced ID (or nil).
function M.record(ref, id, info)
  local json = require "cork.json"
  fs.write(M.info_path(id), json.encode(info) .. "\n", { mode = 384 })
  fs.mkdir(M.root() .. "/refs", 448)
  local rf, old = ref_file(ref), nil
  if fs.exists(rf) then old = (fs.read(rf):match("^(%x+)")) end
  fs.write(rf, M.key(id) .. "\n", { mode = 384 })
  if old and old ~= M.key(id) then
    fs.remove(M.path(old), { missing_ok = true })
    fs.remove(M.info_path(old), { missing_ok = true })
    fs.remove(M.lock_path(old), { missing_ok = true })
    return old
  end
  return nil
end

return M
