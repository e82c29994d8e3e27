-- attack 10: UDP and ICMP to an address off the allowlist
return {
  id = 10,
  name = "UDP (a DNS query) and ICMP to an address off the allowlist",
  layer = "network",
  stops = "internal network + seal: no route for any protocol",
  targets = { "neighbour" },
  script = [[
out=$(timeout 4 nslookup escape-canary.invalid "$HOST" 2>&1 | tr '\n' ' ')
echo "nslookup via $HOST: $out"
case $out in *"Address"*"$HOST"*"Name"*|*"NXDOMAIN"*|*"can't find"*) echo "REACHED a DNS answer from $HOST";; esac
if timeout 3 ping -c 1 -W 2 "$HOST" >/tmp/escape-ping.out 2>&1; then
  echo "REACHED $HOST answers ping"
else
  echo "ping $HOST: $(tail -n 1 /tmp/escape-ping.out)"
fi
]],
}
