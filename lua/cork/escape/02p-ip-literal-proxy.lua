-- attack 2 (through the proxy): an IP literal off the allowlist (dotted and
-- as one integer), a spoofed Host header naming an allowed host, and a
-- CONNECT to the IP. The IP is the suite's upstream's, inside the bottle's
-- ssrf.ip_allowlist: only the allowlist and the authority check stand.
return {
  id = "2p",
  name = "an IP literal through the bundle's proxy (spoofed Host header, CONNECT to an IP)",
  layer = "content",
  requires = "filtering bundle",
  stops = "the filter's allowlist (IP literals normalised, matched only exactly) and its authority check (the bundle)",
  targets = { "upstream" },
  expect = { ": HTTP/1.1 403 " },
  script = [[
try() { ask "$1" "$2"; case $answer in *"X-Canary: upstream"*) echo "REACHED $2: the upstream answered";; esac; }
int=$(echo "$HOST" | { IFS=. read -r a b c d; echo $(( (a << 24) + (b << 16) + (c << 8) + d )); })
try "GET http://$HOST:$PORT/ip HTTP/1.1\r\nHost: $HOST:$PORT\r\nConnection: close\r\n\r\n" "GET http://$HOST"
try "GET http://$int:$PORT/ip-integer HTTP/1.1\r\nHost: $int:$PORT\r\nConnection: close\r\n\r\n" "GET http://$int"
try "GET http://$HOST:$PORT/spoofed HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\nConnection: close\r\n\r\n" "GET http://$HOST with Host: $ALLOWED"
try "CONNECT $HOST:$PORT HTTP/1.1\r\nHost: $HOST:$PORT\r\n\r\nGET /ip-tunnel HTTP/1.1\r\nHost: $HOST:$PORT\r\nConnection: close\r\n\r\n" "CONNECT $HOST"
try "CONNECT $ALLOWED:$PORT HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\n\r\nGET /spoofed-tunnel HTTP/1.1\r\nHost: $HOST:$PORT\r\nConnection: close\r\n\r\n" "CONNECT $ALLOWED, then Host: $HOST"
]],
}
