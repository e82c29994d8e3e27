-- attack 6: the bundle's tokens (the egress token; with a filtering bundle
-- also git-gate's identity file): the agent's env, its files and /proc, and
-- what the bundle's ports answer: each port asked directly (GET and TRACE),
-- and, with a filtering bundle, the route itself: egress adds the egress
-- token to a request for the route host, which is the suite's upstream and
-- echoes every header back (as httpbin's /anything does).
return {
  id = 6,
  name = "the egress token or git identity in the agent's env, files, /proc, or echoed back through the bundle's ports",
  layer = "network",
  stops = "cork gives egress tokens to the bundle only (egress's own environment); egress refuses a route response that echoes the credential",
  -- escaped when the dump holds this planted secret; the agent secret must
  -- be in it (else the dump itself did not work)
  secrets = { "egress_token", "git_identity" },
  sanity = { "agent_secret" },
  script = [[
{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
  for d in "$HOME" /tmp /run /etc /var /opt /srv /mnt /cork /bundle; do
    [ -d "$d" ] && grep -rs . "$d"
  done
} 2>/dev/null | tr '\0' '\n'
# every HTTP port of the bundle (pipelock, egress, supervise), asked
# directly; then the route (the answers go into the dump: the token must not
# be in them)
hop=$PROXY_PORT
for port in ${BUNDLE_PORTS:-8888 9099 9100}; do
  PROXY_PORT=$port
  for m in GET TRACE; do ask "$m / HTTP/1.1\r\nHost: $PROXY_HOST:$port\r\nConnection: close\r\n\r\n" "$m :$port"; echo "$answer"; done
done
PROXY_PORT=$hop
if [ -n "${ROUTE_HOST:-}" ]; then
  for m in GET TRACE; do
    ask "$m http://$ROUTE_HOST:8080/anything HTTP/1.1\r\nHost: $ROUTE_HOST:8080\r\nConnection: close\r\n\r\n" "$m the route"
    echo "$answer"
  done
fi
]],
}
