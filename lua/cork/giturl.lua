-- cork.giturl: git upstream URLs, declared host keys, and the rules a git
-- remote follows, whichever spelling the manifest used (cork's remotes
-- list, bot-bottle's git.remotes mapping or its git-gate.repos).
-- cork.manifest re-exports parse_url and parse_host_key as
-- manifest.parse_git_url and manifest.parse_host_key.
local schema = require "cork.schema"
local M = {}

M.HOST = "^[A-Za-z0-9][A-Za-z0-9.-]*$"
M.NAME = "^[A-Za-z0-9][A-Za-z0-9._-]*$"

-- Parse a git upstream URL: ssh://[user@]host[:port]/path, user@host:path
-- (scp-like) or https://host[:port]/path. Returns {scheme=, host=, port=,
-- path=, user=} or nil, problem.
function M.parse_url(url)
  if url:find("[%s%c]") then return nil, "must not contain spaces or control characters" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if scheme then
    scheme = scheme:lower()
    if scheme ~= "ssh" and scheme ~= "https" then
      return nil, ('unsupported scheme "%s" (use ssh://, user@host:path or https://)'):format(scheme)
    end
    local auth, hostport, path = rest:match("^([^/]-)@?([^@/]+)(/.+)$")
    if not hostport then return nil, "has no host and path" end
    local user = auth ~= "" and auth or nil
    if user and user:find(":") then return nil, "must not embed a password" end
    local host, port = hostport:match("^(.-):(%d+)$")
    if not host then host = hostport end
    port = tonumber(port) or (scheme == "ssh" and 22 or 443)
    if not host:find(M.HOST) then return nil, ('invalid host "%s"'):format(host) end
    if port < 1 or port > 65535 then return nil, "invalid port" end
    return {scheme = scheme, host = host:lower(), port = port, path = path, user = user}
  end
  local user, host, path = url:match("^([%w._-]+)@([^:/]+):(.+)$")
  if user then
    if not host:find(M.HOST) then return nil, ('invalid host "%s"'):format(host) end
    return {scheme = "ssh", host = host:lower(), port = 22, path = path, user = user}
  end
  return nil, "not a git URL (use ssh://host/path, user@host:path or https://host/path)"
end

local KEY_TYPES = {
  ["ssh-ed25519"] = true, ["ssh-rsa"] = true, ["ecdsa-sha2-nistp256"] = true,
  ["ecdsa-sha2-nistp384"] = true, ["ecdsa-sha2-nistp521"] = true,
  ["sk-ssh-ed25519@openssh.com"] = true, ["sk-ecdsa-sha2-nistp256@openssh.com"] = true,
  ["ssh-dss"] = true,
}

-- A declared host key is "TYPE BASE64" or a known_hosts line "HOST TYPE
-- BASE64". Returns {type=, key=, hosts=?} or nil, problem.
function M.parse_host_key(s)
  local words = {}
  for w in s:gmatch("%S+") do words[#words + 1] = w end
  local hosts
  if #words >= 3 and not KEY_TYPES[words[1]] then hosts = table.remove(words, 1) end
  if #words < 2 then return nil, 'expected "TYPE KEY" (e.g. "ssh-ed25519 AAAA...")' end
  if not KEY_TYPES[words[1]] then
    return nil, ('unknown key type "%s"'):format(words[1])
  end
  if not words[2]:find("^[A-Za-z0-9+/]+=*$") or #words[2] < 16 then
    return nil, "the key is not base64"
  end
  if #words > 3 then return nil, 'extra words (expected "TYPE KEY [COMMENT]")' end
  return {type = words[1], key = words[2], hosts = hosts}
end

-- A HOST:IPV4 extra_hosts entry is well formed.
function M.extra_host_ok(e)
  local h, ip = e:match("^([^:]+):(%d+%.%d+%.%d+%.%d+)$")
  if not h or not h:find(M.HOST) then return false end
  for o in ip:gmatch("%d+") do if tonumber(o) > 255 then return false end end
  return true
end

-- The rules of one remote, for a schema check function. names maps the
-- roles to the keys this spelling uses: {url=, identity=, host_key=}
-- (each a list of accepted keys, the first being the one messages name).
-- A missing host key or identity for ssh fails closed.
function M.check_remote(r, at, names)
  local function first(role)
    for _, k in ipairs(names[role]) do if not schema.is_null(r[k]) then return r[k], k end end
    return nil, names[role][1]
  end
  local url, url_key = first("url")
  if type(url) ~= "string" or url == "" then return nil end
  local u, problem = M.parse_url(url)
  if not u then at.fail(problem, url_key); return nil end
  if names.ssh_only and u.scheme ~= "ssh" then
    at.fail(("must be an ssh:// URL (%s is %s)"):format(url_key, u.scheme), url_key)
    return nil
  end
  local hk, hk_key = first("host_key")
  local id, id_key = first("identity")
  if u.scheme == "ssh" then
    if schema.is_null(hk) or (type(hk) == "table" and #hk == 0) then
      at.fail(("ssh remote %s has no %s (cork never trusts a host key on first use)"):format(u.host, hk_key))
    else
      local list = type(hk) == "table" and hk or {hk}
      for i, k in ipairs(list) do
        if type(k) == "string" then
          local _, p = M.parse_host_key(k)
          if p then
            at.fail((type(hk) == "table" and ("[%d] "):format(i) or "") .. "not a host key: " .. p, hk_key)
          end
        end
      end
    end
    if schema.is_null(id) then
      at.fail(("ssh remote %s has no %s%s"):format(u.host, id_key, names.no_identity_hint or ""))
    end
  elseif not schema.is_null(id) then
    at.fail(("%s applies to ssh remotes only"):format(id_key), id_key)
  end
  return u
end

return M
