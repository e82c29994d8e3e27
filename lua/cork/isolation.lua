-- cork.isolation: the post-launch check both stock recipes run before they
-- hand a bottle over (the provisioning step "isolation"; a user recipe drops
-- it with `provision.steps:remove("isolation")`).
--
-- From inside the agent, as the agent would:
--   1. its first hop (HTTPS_PROXY) answers            else kind "unreachable"
--   2. nothing it must not reach is reachable          else kind "isolation"
-- For 2 cork starts a canary (cork.canary) on the host's 127.0.0.1 and on
-- one more host address outside the agent's allowance, and the agent tries
-- them: the host's 127.0.0.1 directly, through smolvm's gateway (100.96.0.1,
-- which smolvm relays to the host's 127.0.0.1), and the other address. The
-- canary counts what arrived, so a connection counts even when the agent's
-- own tools say nothing. Extra targets (e.g. the bundle's own address on its
-- network, which answers when reached) count when anything answers.
--
-- ctx.isolation, set by the recipe:
--   canary = { "127.0.0.1", other... }   host addresses the canary listens on
--   probes = { { host =, what =, port = (nil: the canary's) }, ... }
--   timeout = seconds each attempt may take (default 3)
--   hop_wait = seconds to keep trying the first hop (default 20: the
--              bundle's daemons may still be starting)
-- Cost: one exec in the agent; the attempts run in parallel, so a refused
-- attempt costs a round trip and a silently dropped one the timeout.
local cork = require "cork"
local log = require "cork.log"

local M = {}

-- The guest's side: one POSIX sh script, whatever tools the agent image has
-- (bash's /dev/tcp, curl, nc). Arguments: the timeout of one attempt, how
-- long to keep trying the first hop, then pairs HOST PORT, the first hop
-- first. Prints "N BYTES" per target: what came back (0: nothing answered).
-- Exit 3 when no tool can open a connection.
M.SCRIPT = [[
t=$0 w=$1; shift
try() {
  if command -v bash >/dev/null 2>&1; then
    timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; printf "GET / HTTP/1.0\r\n\r\n" >&3; head -c 64 <&3' "$1" "$2" 2>/dev/null
  elif command -v curl >/dev/null 2>&1; then
    curl --noproxy '*' -s -i -m "$t" "http://$1:$2/" 2>/dev/null | head -c 64
  elif command -v nc >/dev/null 2>&1; then
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout "$t" nc "$1" "$2" 2>/dev/null | head -c 64
  else
    return 3
  fi
}
command -v bash >/dev/null 2>&1 || command -v curl >/dev/null 2>&1 || command -v nc >/dev/null 2>&1 || {
  echo "none of bash, curl, nc" >&2; exit 3; }
# the first hop: again every half second until it answers or $w seconds pass
# (a bundle's daemons may still be starting)
( end=$(( $(date +%s) + w )); n=0
  while :; do
    n=$(try "$1" "$2" | wc -c)
    [ "$n" -gt 0 ] || [ "$(date +%s)" -ge "$end" ] && break
    sleep 0.5
  done; echo "0 $n" ) &
shift 2
i=1
while [ $# -ge 2 ]; do
  ( n=$(try "$1" "$2" | wc -c); echo "$i $n" ) &
  i=$((i + 1)); shift 2
done
wait
]]

local function hop_of(env)
  local url = env and (env.HTTPS_PROXY or env.HTTP_PROXY)
  if not url then return nil end
  local host, port = url:match("^%a+://([^/:]+):(%d+)")
  return host, tonumber(port), url
end

-- run(ctx) -> report {elapsed=, hop=, reached={...}}; raises on failure.
function M.run(ctx)
  local t0 = cork.time()
  local o = ctx.isolation or {}
  local timeout = o.timeout or 3
  local hop_host, hop_port, url = hop_of(ctx.env)
  if not hop_host then
    cork.error("unreachable", "isolation check: the agent has no first hop (HTTPS_PROXY is not set)")
  end
  -- the canary: on every address given that this host has; one it lacks is
  -- left out (logged), the probe to it then counts only if something answers
  local addrs, canary = {}, nil
  for _, a in ipairs(o.canary or { "127.0.0.1" }) do addrs[#addrs + 1] = a end
  while not canary and #addrs > 0 do
    local ok, err = pcall(require("cork.canary").open, { addrs = addrs })
    if ok then canary = err
    elseif cork.is_error(err, "io") and err.addr then
      log.debug(("isolation check: no canary on %s (%s)"):format(err.addr, tostring(err)))
      for i, a in ipairs(addrs) do if a == err.addr then table.remove(addrs, i); break end end
    else error(err, 0) end
  end
  if not canary then cork.error("io", "isolation check: cannot start a canary on any host address") end
  local port = canary:port()
  local canary_addrs = canary:addrs()
  local targets = { { host = hop_host, port = hop_port, what = "the first hop " .. url } }
  for _, pr in ipairs(o.probes or { { host = "127.0.0.1", what = "the host's 127.0.0.1" } }) do
    targets[#targets + 1] = { host = pr.host, port = pr.port or port, what = pr.what or pr.host }
  end
  local argv = { "sh", "-c", M.SCRIPT, tostring(timeout), tostring(o.hop_wait or 20) }
  for _, tg in ipairs(targets) do argv[#argv + 1] = tg.host; argv[#argv + 1] = tostring(tg.port) end
  local r = ctx:exec(argv, { user = ctx.provider and ctx.provider.user, check = false })
  local hits, by = canary:hits()
  canary:close()
  if r.status == 3 then
    cork.error("unreachable", ("isolation check: the agent has none of bash, curl or nc to test its network "
      .. "with (add one to the agent image, or drop the step: provision.steps:remove(\"isolation\"))"),
      { stderr = r.stderr })
  end
  local got = {}
  for i, n in (r.stdout or ""):gmatch("(%d+) (%d+)") do got[tonumber(i)] = tonumber(n) end
  local report = { hop = url, canary_port = port, reached = {} }
  if (got[0] or 0) == 0 then
    cork.error("unreachable", ("isolation check: the agent cannot reach its first hop %s"):format(url),
      { hop = url, status = r.status, stderr = r.stderr })
  end
  for i = 2, #targets do
    if (got[i - 1] or 0) > 0 then report.reached[#report.reached + 1] = targets[i].what end
  end
  if hits > 0 then
    local where = {}
    for a, n in pairs(by) do if n > 0 then where[#where + 1] = ("%s:%d"):format(a, port) end end
    table.sort(where)
    report.reached[#report.reached + 1] = "the canary on " .. table.concat(where, ", ")
  end
  report.elapsed = cork.time() - t0
  if #report.reached > 0 then
    cork.error("isolation", ("isolation check: the agent reached what it must not: %s")
      :format(table.concat(report.reached, "; ")), { reached = report.reached })
  end
  log.info(("isolation check passed in %.2f s (first hop answers; %d targets unreachable)")
    :format(report.elapsed, #targets - 1))
  log.event("isolation_check", { elapsed = report.elapsed, hop = url, unreachable = #targets - 1,
    canary = canary_addrs })
  return report
end

return M
