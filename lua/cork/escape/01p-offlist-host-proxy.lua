-- attack 1 (through the proxy): a host off the allowlist, asked of the
-- agent's own proxy: a plain request and a CONNECT. The bundle resolves the
-- host to the suite's upstream, so a filter that let it through would be seen.
return {
  id = "1p",
  name = "a host off the allowlist, through the bundle's proxy",
  layer = "content",
  requires = "filtering bundle",
  stops = "the filter's allowlist (strict mode), before any DNS lookup (the bundle)",
  targets = { "upstream" },
  expect = { ": HTTP/1.1 403 " },
  script = [[
try() { ask "$1" "$2"; case $answer in *"X-Canary: upstream"*) echo "REACHED $2: the upstream answered";; esac; }
try "GET http://$OFFLIST:$PORT/offlist HTTP/1.1\r\nHost: $OFFLIST:$PORT\r\nConnection: close\r\n\r\n" "GET http://$OFFLIST"
try "CONNECT $OFFLIST:$PORT HTTP/1.1\r\nHost: $OFFLIST:$PORT\r\n\r\nGET /offlist-tunnel HTTP/1.1\r\nHost: $OFFLIST:$PORT\r\nConnection: close\r\n\r\n" "CONNECT $OFFLIST"
]],
}
