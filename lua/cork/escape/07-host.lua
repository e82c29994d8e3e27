-- attack 7: the host: its 127.0.0.1, the bridge gateway, a link-local address,
-- the Docker socket (smolmachines: also the host's 127.0.0.1 through smolvm's
-- gateway 100.96.0.1)
return {
  id = 7,
  name = "the host: 127.0.0.1, the bridge gateway, a link-local address, the Docker socket",
  layer = "network",
  stops = "the container's own loopback; the seal's prohibit route to the gateway; no socket is mounted",
  targets = { "host_loopback", "host_gateway", "link_local" },
  -- in a VM: the host's 127.0.0.1 is reached only through smolvm's gateway
  -- 100.96.0.1 (a canary on 127.0.0.1 of its own), the guest's 127/8 is
  -- its own
  smolmachines = {
    stops = "the guest's 127/8 is its own loopback; the gateway 100.96.0.1 (the host's 127.0.0.1) and every "
      .. "other host address are off smolvm's allowlist (exactly <alias>/32); 169.254/16 is under smolvm's "
      .. "floor; no Docker socket is in the VM",
    targets = { "host_loopback", "smol_gateway", "host_gateway", "link_local" },
  },
  script = [[
for s in /var/run/docker.sock /run/docker.sock; do [ -S "$s" ] && echo "REACHED the Docker socket $s is mounted"; done
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
}
