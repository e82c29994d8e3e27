-- attack 10: UDP and ICMP to an address off the allowlist, as the agent.
-- The agent's ping is refused a raw socket before anything is sent (it has
-- no CAP_NET_RAW): attack 10i sends the ICMP from beside it, with one.
return {
  id = 10,
  name = "UDP (a DNS query) and ICMP (as the agent) to an address off the allowlist",
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
  -- Under smolvm, UDP to port 53 goes to the gateway's DNS relay whatever
  -- the address (attack 4 tries that): here a datagram to another port
  -- (busybox's tftp is the UDP client at hand) and an ICMP echo, both of
  -- which the gateway must refuse; the neighbour's counter is the judge.
  -- (The guest's busybox ping needs a raw socket, which the unprivileged
  -- agent lacks: the agent's ICMP stops in the guest; 10i sends it.)
  smolmachines = {
    stops = "smolvm's gateway applies the allowlist to UDP and ICMP as to TCP (udp_relay.rs, icmp_relay.rs); "
      .. "port 53 goes to its DNS relay (attack 4)",
    script = [[
out=$(timeout 4 tftp -g -r escape-canary -l /dev/null "$HOST" "$PORT" 2>&1 | tr '\n' ' ')
echo "tftp (UDP) to $HOST:$PORT: $out"
if timeout 3 ping -c 1 -W 2 "$HOST" >/tmp/escape-ping.out 2>&1; then
  echo "REACHED $HOST answers ping"
else
  echo "ping $HOST: $(tail -n 1 /tmp/escape-ping.out)"
fi
]],
  },
}
