-- attack 8: neighbours: a second bottle's bundle (its addresses and daemon
-- ports, launched by the suite), and a canary container on another network
return {
  id = 8,
  name = "neighbours: a second bottle's bundle, a canary container on another network",
  layer = "network",
  stops = "internal network + seal (and the engine's isolation rules where it has them)",
  targets = { "neighbour_bundle", "neighbour" },
  smolmachines = { stops = "smolvm's egress allowlist (exactly <alias>/32), checked by its gateway on the guest's original "
    .. "destination: another bottle's alias and bundle, and a container on another network, are off it" },
  script = [[
for ep in $ENDPOINTS; do
  ( h=${ep%:*}; p=${ep##*:}
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$h" "$p" 2>&1 | head -n 1)
    case $out in HTTP/*) echo "REACHED $h:$p answered: $out";; *) echo "no answer from $h:$p ($out)";; esac ) &
done
wait
]],
}
