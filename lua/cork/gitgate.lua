-- cork.gitgate: the git-gate daemon's plan. The agent never holds a git
-- credential: it fetches from and pushes to bare mirrors in its bundle over
-- git://, and git-gate talks to the real upstreams with the operator's
-- identity files and the host keys the bottle declares.
local cork = require "cork"
local manifest = require "cork.manifest"
local M = {}

M.PORT = 9418
M.CONF = "/etc/cork/git-gate"          -- in the bundle, read-only
M.ROOT = "/var/lib/cork/git-gate"      -- in the bundle, the mirrors

-- The shell scripts the bundle runs, by name (asset file under
-- lua/cork/assets/git-gate/).
M.SCRIPTS = {entrypoint = "entrypoint.sh", pre_receive = "pre-receive", access = "access"}

-- Text of an asset: CORK_PATH dirs first (DIR/lua/cork/assets/NAME, then
-- DIR/cork/assets/NAME), then the copy embedded in the binary.
function M.asset(name)
  local rel = "cork/assets/" .. name
  for dir in (os.getenv("CORK_PATH") or ""):gmatch("[^;]+") do
    for _, p in ipairs({dir .. "/lua/" .. rel, dir .. "/" .. rel}) do
      if cork.fs.exists(p) then return cork.fs.read(p) end
    end
  end
  local text = cork.core and cork.core.embedded and cork.core.embedded("lua/" .. rel)
  if not text then cork.error("not_found", "cork asset " .. rel .. " is missing from this build") end
  return text
end

-- known_hosts content for one upstream from its declared keys.
function M.known_hosts(remote)
  local lines = {}
  local default_host = remote.port == 22 and remote.host or ("[%s]:%d"):format(remote.host, remote.port)
  for _, k in ipairs(remote.host_keys or {}) do
    local hk = assert(manifest.parse_host_key(k))
    lines[#lines + 1] = ("%s %s %s"):format(hk.hosts or default_host, hk.type, hk.key)
  end
  if #lines == 0 then return nil end
  return table.concat(lines, "\n") .. "\n"
end

-- The plan for a bottle's remotes (nil when it has none).
-- o = {state_dir=, expand=fn(path, remote) -> host path of an identity file}.
function M.plan(remotes, o)
  if not remotes or #remotes == 0 then return nil end
  local hostdir = o.state_dir .. "/git-gate"
  local p = {
    port = M.PORT, conf_dir = M.CONF, root = M.ROOT,
    host_dir = hostdir,
    upstreams = {}, extra_hosts = {}, insteadof = {}, files = {}, mounts = {},
    hosts = {},
  }
  local tsv = {}
  local seen_extra, seen_host = {}, {}
  for _, r in ipairs(remotes) do
    local u = {name = r.name, repo = r.name .. ".git", url = r.url, host = r.host,
      port = r.port, scheme = r.scheme, extra_hosts = r.extra_hosts or {}}
    local key_in, kh_in = "-", "-"
    if r.scheme == "ssh" then
      u.known_hosts = M.known_hosts(r)
      if not u.known_hosts then
        -- the validator refuses this; a plan built by hand must fail closed too
        cork.error("manifest", ("%s: ssh remote %s has no host_key (cork never trusts a host key on first use)")
          :format(r.where or "?", r.host), {remote = r.name})
      end
      u.identity_file = (o.expand or cork.fs.expand_tilde)(r.identity_file, r)
      if not cork.fs.exists(u.identity_file) then
        cork.error("manifest", ("%s: ssh remote %s: identity_file %s does not exist"):format(
          r.where or "?", r.name, u.identity_file), {remote = r.name, path = u.identity_file})
      end
      key_in = M.CONF .. "/keys/" .. r.name
      kh_in = M.CONF .. "/known_hosts/" .. r.name
      u.identity_mount = key_in
      u.known_hosts_path = kh_in
      p.files[#p.files + 1] = {path = hostdir .. "/known_hosts/" .. r.name, mode = "0644",
        content = u.known_hosts, role = "git-gate known_hosts " .. r.name}
      -- the key's mount point must exist inside the read-only conf mount
      -- (Docker cannot make it there): an empty placeholder in the host dir
      p.files[#p.files + 1] = {path = hostdir .. "/keys/" .. r.name, mode = "0600", content = "",
        role = "git-gate key mount point " .. r.name}
      p.mounts[#p.mounts + 1] = {source = u.identity_file, target = key_in, read_only = true}
    end
    tsv[#tsv + 1] = table.concat({r.name, r.url, key_in, kh_in}, "\t")
    for _, e in ipairs(u.extra_hosts) do
      if not seen_extra[e] then seen_extra[e] = true; p.extra_hosts[#p.extra_hosts + 1] = e end
    end
    if not seen_host[r.host] then seen_host[r.host] = true; p.hosts[#p.hosts + 1] = r.host end
    p.insteadof[#p.insteadof + 1] = {path = "/" .. u.repo, url = r.url}
    p.upstreams[#p.upstreams + 1] = u
  end
  p.files[#p.files + 1] = {path = hostdir .. "/upstreams", mode = "0644",
    content = table.concat(tsv, "\n") .. "\n", role = "git-gate upstreams"}
  p.scripts = {}
  for key, file in pairs(M.SCRIPTS) do
    local text = M.asset("git-gate/" .. file)
    p.scripts[key] = text
    local dest = file == "entrypoint.sh" and (hostdir .. "/" .. file) or (hostdir .. "/hooks/" .. file)
    p.files[#p.files + 1] = {path = dest, mode = "0755", content = text, role = "git-gate " .. file}
  end
  table.sort(p.files, function(a, b) return a.path < b.path end)
  -- the whole host dir is one read-only mount; keys are mounted file by file
  table.insert(p.mounts, 1, {source = hostdir, target = M.CONF, read_only = true})
  p.entrypoint = M.CONF .. "/entrypoint.sh"
  return p
end

-- The agent's git config rewrites, once the gate's URL is known
-- ("git://<alias>:<port>"): list of {key=, value=} for `git config --global`.
function M.insteadof_config(gp, gate_url)
  local out = {}
  for _, i in ipairs(gp and gp.insteadof or {}) do
    out[#out + 1] = {key = ("url.%s%s.insteadOf"):format(gate_url, i.path), value = i.url}
  end
  return out
end

return M
