-- cork.journal: what a bottle owns, written down before it exists.
--
-- Each bottle has a state dir ($XDG_STATE_HOME/cork/<slug>, 0700) holding
-- `journal`: one JSON object per line, appended with fsync. A recipe records
-- each resource *before* the call that creates it (names are known in
-- advance), so even a SIGKILL between the two leaves a line that
-- `cork down SLUG` can act on; removing something that never got created is
-- a no-op there. Lines:
--
--   {"op":"begin","slug":..,"backend":..,"bottle":..,"pid":..,"ts":..}
--   {"op":"add","kind":"network"|"container"|"vm"|"alias"|"dir",
--    "name":..,"ts":..,...}                       -- about to create it
--   {"op":"removed","kind":..,"name":..}          -- gone (cleanup or down)
--   {"op":"detached","pid":..}                    -- handed to `cork down`
--   {"op":"meta", ...}                            -- facts for `cork ls`
local cork = require "cork"
local xdg = require "cork.xdg"
local json = require "cork.json"
local fs = require "cork.fs"

local M = {}

-- What a slug is (cork.plan makes them): "<name>-<suffix>", [a-z0-9-] only,
-- no leading, trailing or double dash. Here, beside the state dirs they
-- name, so that `cork down` checks one without loading the planner.
M.SLUG_BASE_MAX = 20
M.SLUG_SUFFIX = 6

function M.is_slug(s)
  return type(s) == "string" and #s <= M.SLUG_BASE_MAX + 1 + M.SLUG_SUFFIX
    and s:find("^[a-z0-9][a-z0-9-]*[a-z0-9]$") ~= nil and not s:find("--", 1, true)
end

local root_override

-- set_root(dir): keep journals somewhere else (--dry-run uses a temp dir).
function M.set_root(dir) root_override = dir end

function M.root()
  if root_override then return root_override end
  return xdg.home("state") .. "/cork"
end

function M.dir(slug) return M.root() .. "/" .. slug end
function M.path(slug) return M.dir(slug) .. "/journal" end

local Journal = {}
Journal.__index = Journal

local function now() return os.time() end

-- sync = false: a line whose loss is harmless (see removed)
function Journal:append(rec, sync)
  rec.ts = rec.ts or now()
  fs.append(self.path, json.encode(rec) .. "\n", { mode = 384, sync = sync ~= false })
end

-- j:add(kind, name, extra): record a resource about to be created.
function Journal:add(kind, name, extra)
  local rec = { op = "add", kind = kind, name = name }
  for k, v in pairs(extra or {}) do rec[k] = v end
  self:append(rec)
end

-- Not fsynced: a "removed" line lost in a crash only makes `cork down`
-- remove that resource again, and removing a missing resource is a no-op
-- (every teardown used to wait for one fsync per resource).
function Journal:removed(kind, name)
  self:append({ op = "removed", kind = kind, name = name }, false)
end

function Journal:meta(fields)
  local rec = { op = "meta" }
  for k, v in pairs(fields) do rec[k] = v end
  self:append(rec)
end

function Journal:detached()
  self:append({ op = "detached", pid = cork.core.pid() })
end

-- M.open(slug, fields): create the state dir (0700) and start the journal.
function M.open(slug, fields)
  local dir = M.dir(slug)
  fs.mkdir(M.root(), 448)
  local existed = fs.exists(dir)
  fs.mkdir(dir, 448)
  local j = setmetatable({ slug = slug, dir = dir, path = M.path(slug) }, Journal)
  local rec = { op = "begin", slug = slug, pid = cork.core.pid() }
  for k, v in pairs(fields or {}) do rec[k] = v end
  local ok, err = pcall(j.append, j, rec)
  if not ok then
    -- a full disk (or a read-only state dir) at the first line: no empty
    -- state dir stays behind to look like a bottle
    if not existed then pcall(fs.remove, dir, { recursive = true, missing_ok = true }) end
    if cork.is_error(err) and err.kind ~= "interrupted" then
      cork.error(err.kind, ("cannot start the journal of %s: %s"):format(slug, err.message), { path = j.path })
    end
    error(err, 0)
  end
  return j
end

-- M.attach(slug): the journal of an existing bottle, to append to (nil
-- when there is none).
function M.attach(slug)
  if not fs.exists(M.path(slug)) then return nil end
  return setmetatable({ slug = slug, dir = M.dir(slug), path = M.path(slug) }, Journal)
end

-- M.read(slug) -> state or nil:
--   { slug, backend, bottle, pid, started, detached, meta = {...},
--     resources = { {kind, name, ...}, ... in creation order, live only } }
function M.read(slug)
  local path = M.path(slug)
  if not fs.exists(path) then return nil end
  local st = { slug = slug, meta = {}, resources = {}, path = path, dir = M.dir(slug) }
  local live = {}
  for line in fs.read(path):gmatch("[^\n]+") do
    local ok, rec = pcall(json.decode, line)
    if ok and type(rec) == "table" then
      if rec.op == "begin" then
        -- JSON numbers come back as floats: a pid is an integer (kill 28773.0 fails)
        st.backend, st.bottle, st.pid, st.started = rec.backend, rec.bottle, math.tointeger(rec.pid), rec.ts
        for k, v in pairs(rec) do if st.meta[k] == nil and k ~= "op" then st.meta[k] = v end end
      elseif rec.op == "add" then
        local key = rec.kind .. "\0" .. rec.name
        if not live[key] then
          live[key] = rec
          st.resources[#st.resources + 1] = rec
        end
      elseif rec.op == "removed" then
        local key = tostring(rec.kind) .. "\0" .. tostring(rec.name)
        if live[key] then
          live[key] = nil
          for i, r in ipairs(st.resources) do
            if r.kind == rec.kind and r.name == rec.name then table.remove(st.resources, i); break end
          end
        end
      elseif rec.op == "detached" then
        st.detached, st.pid = true, math.tointeger(rec.pid)
      elseif rec.op == "meta" then
        for k, v in pairs(rec) do if k ~= "op" and k ~= "ts" then st.meta[k] = v end end
      end
    end
  end
  -- the owning cork process: alive and attached means a run is in progress
  st.owner_alive = st.pid and not st.detached and cork.core.pid_alive(st.pid) or false
  return st
end

-- M.slugs() -> every slug with a journal, sorted.
function M.slugs()
  local out, root = {}, M.root()
  if not fs.exists(root) then return out end
  for _, name in ipairs(fs.list(root)) do
    if fs.exists(root .. "/" .. name .. "/journal") then out[#out + 1] = name end
  end
  return out
end

-- M.finish(slug[, {force = true}]): the bottle is gone: remove its state
-- dir. Recipes defer it first (so it runs last); it refuses (kind "cleanup")
-- while the journal still lists a resource whose removal was not confirmed
-- (an engine away or frozen during cleanup): the journal then stays for
-- `cork down SLUG`. force removes the dir whatever it lists.
function M.finish(slug, o)
  local force = type(o) == "table" and not cork.is_error(o) and o.force
  if not force then
    local st = M.read(slug)
    if st and #st.resources > 0 then
      local left = {}
      for _, r in ipairs(st.resources) do left[#left + 1] = r.kind .. " " .. r.name end
      cork.error("cleanup", ("bottle %s: %d resource%s could not be removed (%s); the journal is kept: "
        .. "run `cork down %s` once the engine is back"):format(slug, #left, #left == 1 and "" or "s",
        table.concat(left, ", "), slug), { slug = slug, left = left })
    end
  end
  fs.remove(M.dir(slug), { recursive = true, missing_ok = true })
end

return M
