-- attack 9: undoing the seal: a default route back, capabilities up
return {
  id = 9,
  name = "undoing the seal: re-adding a default route, raising capabilities",
  layer = "network",
  stops = "the agent has no NET_ADMIN (cap_drop ALL) and no-new-privileges",
  targets = { "neighbour" },
  script = [[
if ip route add default via "$GATEWAY" 2>/tmp/escape-route.err; then
  echo "REACHED added a default route via $GATEWAY"
else
  echo "ip route add refused: $(head -n 1 /tmp/escape-route.err)"
fi
eff=$(grep '^CapEff:' /proc/self/status | tr -d ' \t' | cut -d: -f2)
case $eff in 0000000000000000) echo "no effective capabilities";; *) echo "REACHED effective capabilities $eff";; esac
nnp=$(grep '^NoNewPrivs:' /proc/self/status | tr -d ' \t' | cut -d: -f2)
[ "$nnp" = 1 ] && echo "no-new-privileges holds" || echo "REACHED no-new-privileges is off ($nnp)"
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
  -- In a VM the routes and capabilities are the guest kernel's own: the seal
  -- is smolvm's gateway, outside the guest. The agent (unprivileged, as
  -- runuser starts it) tries to route and address its way around it, and
  -- then the neighbour; what counts is whether anything arrives there.
  smolmachines = {
    stops = "smolvm's gateway holds the allowlist outside the guest: no route, address or capability inside "
      .. "the VM changes what it lets through; the agent runs unprivileged (runuser)",
    script = [[
if ip route replace "$HOST/32" via "$GATEWAY" dev eth0 2>/tmp/escape-route.err; then
  echo "added a route to $HOST via $GATEWAY (the guest's own table)"
else
  echo "ip route replace refused: $(head -n 1 /tmp/escape-route.err)"
fi
if ip addr add 100.96.0.3/30 dev eth0 2>/tmp/escape-addr.err; then
  echo "added a second address on eth0 (the guest's own)"
else
  echo "ip addr add refused: $(head -n 1 /tmp/escape-addr.err)"
fi
if [ -r /proc/self/status ]; then
  eff=$(grep '^CapEff:' /proc/self/status | tr -d ' \t' | cut -d: -f2)
  echo "effective capabilities in the guest: $eff"
else
  echo "no /proc in this guest"
fi
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
  },
}
