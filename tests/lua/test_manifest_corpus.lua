-- Replays the fuzz corpus (tests/fuzz/corpus, grown by `make fuzz`) through
-- the manifest loader (and, for a bottle that loads, cork.plan.build) in the
-- normal build: every input loads or fails with a "manifest" error, never
-- anything else. The first byte of an input picks
-- the form as in tests/fuzz/fuzz_manifest.c.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local manifest = require "cork.manifest"
local plan = require "cork.plan"

local dir = os.getenv("CORK_ROOT") .. "/tests/fuzz/corpus"
local files = cork.fs.list(dir)
T.ok(#files > 0, "corpus present (" .. #files .. " inputs)")
local bad = {}
local t0 = cork.time()
for _, name in ipairs(files) do
  local data = cork.fs.read(dir .. "/" .. name)
  local mode = #data > 0 and data:byte(1) or 0
  data = data:sub(2)
  local kind = (mode & 1) == 1 and "agent" or "bottle"
  local fname = (mode & 2) == 2 and "fuzz.md" or "fuzz.yaml"
  local ok, err = pcall(function()
    local doc, meta = manifest.parse(data, fname, kind)
    if kind == "agent" then manifest.normalize_agent(doc, meta, "fuzz")
    else
      local b = manifest.normalize_bottle(doc, meta, "fuzz")
      plan.build(b, nil, {env = {HOME = "/nonexistent-cork-fuzz"}, suffix = "fuzz00", subnets = {}})
    end
  end)
  if not ok and not cork.is_error(err, "manifest") then
    bad[#bad + 1] = name .. ": " .. tostring(type(err) == "table" and err.message or err)
  elseif not ok and not err.message:find("^fuzz%.[a-z]+:%d+:%d+: ") then
    bad[#bad + 1] = name .. ": message without file:line:col: " .. err.message
  end
end
T.is(#bad, 0, "every corpus input loads or fails with a positioned manifest error", table.concat(bad, "\n"))
T.diag(("%d inputs in %.2f s"):format(#files, cork.time() - t0))
T.done()
