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
}
