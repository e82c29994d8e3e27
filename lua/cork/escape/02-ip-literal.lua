-- attack 2: an IP literal off the allowlist, with a spoofed Host header
return {
  id = 2,
  name = "an IP literal off the allowlist (spoofed Host header, proxy variables unset)",
  layer = "network",
  stops = "internal network + seal: no route to any address but the bundle's",
  targets = { "neighbour" },
  smolmachines = { stops = "smolvm's egress allowlist (exactly <alias>/32), checked by its gateway on the guest's original destination: an IP literal is an address like any other; the Host header is never looked at" },
  script = [[
unset HTTPS_PROXY HTTP_PROXY https_proxy http_proxy ALL_PROXY all_proxy
out=$(printf 'GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nConnection: close\r\n\r\n' \
  | timeout 3 nc "$HOST" "$PORT" 2>&1 | head -n 1)
case $out in HTTP/*) echo "REACHED $HOST:$PORT answered: $out";; *) echo "no answer from $HOST:$PORT ($out)";; esac
]],
}
