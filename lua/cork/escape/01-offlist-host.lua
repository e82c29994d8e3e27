-- attack 1: a host off the allowlist, directly, with the proxy variables unset
return {
  id = 1,
  name = "a host off the allowlist, directly (proxy variables unset)",
  layer = "network",
  stops = "internal network + seal: the agent has no route but to its bundle",
  targets = { "neighbour" },
  smolmachines = { stops = "smolvm's egress allowlist (exactly <alias>/32), checked by its gateway on the guest's original destination: the connection is refused" },
  script = [[
unset HTTPS_PROXY HTTP_PROXY https_proxy http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy
out=$(printf 'GET / HTTP/1.1\r\nHost: off-allowlist.escape.invalid\r\nConnection: close\r\n\r\n' \
  | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
}
