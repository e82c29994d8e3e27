-- A stand-in `cork serve --stdio` speaking only the supervise methods
-- (supervise_pending, supervise_decide), for the plugin's :Cork supervise
-- tests while no real bundle answers. Run as
--   cork script tests/nvim/fake_supervise_serve.lua serve --stdio
-- With CORK_FAKE_NO_SUPERVISE set, it knows no method (an older cork).
-- Decisions are appended to $CORK_NVIM_TMP/decisions ("ID DECISION NOTE" lines).
local json = require "cork.json"
local pending = {
  { id = "r1", slug = "dev-a1b2c3", kind = "allowlist", host = "pypi.org", justification = "pip install", created = 1 },
  { id = "r2", slug = "dev-a1b2c3", kind = "route", host = "api.example.com", paths = { "/v1/*" },
    justification = "the tests call it", created = 2 },
}
local function send(t) io.stdout:write(json.encode(t), "\n"); io.stdout:flush() end
for line in io.lines() do
  local req = json.decode(line)
  local p = type(req.params) == "table" and req.params or {}
  if os.getenv("CORK_FAKE_NO_SUPERVISE") then   -- a cork from before supervise
    send({ id = req.id, error = { kind = "unknown_method", message = ("unknown method '%s'"):format(tostring(req.method)) } })
  elseif req.method == "supervise_pending" then
    local out = {}
    for _, r in ipairs(pending) do if not p.slug or r.slug == p.slug then out[#out + 1] = r end end
    send({ id = req.id, result = { requests = out } })   -- (an empty list is {} here: clients cope)
  elseif req.method == "supervise_decide" then
    local found
    for i, r in ipairs(pending) do if r.id == p.id then found = table.remove(pending, i); break end end
    if not found then
      send({ id = req.id, error = { kind = "not_found", message = "no supervise request " .. tostring(p.id) } })
    else
      local f = io.open(os.getenv("CORK_NVIM_TMP") .. "/decisions", "a")
      f:write(("%s %s %s\n"):format(p.id, p.decision, p.note or "-"))
      f:close()
      send({ id = req.id, result = { id = p.id, slug = found.slug, status = p.decision == "approve" and "approved" or "denied",
        note = p.note or "" } })
    end
  else
    send({ id = req.id, error = { kind = "unknown_method", message = ("unknown method '%s'"):format(tostring(req.method)) } })
  end
end
