-- attack 8: a canary container on another network
return {
  id = 8,
  name = "a neighbour: a canary container on another network",
  layer = "network",
  stops = "internal network + seal (and the engine's isolation rules where it has them)",
  targets = { "neighbour" },
  smolmachines = { stops = "smolvm's egress allowlist (exactly <alias>/32), checked by its gateway on the guest's original destination: a container on another network is off it" },
  script = [[
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
}
