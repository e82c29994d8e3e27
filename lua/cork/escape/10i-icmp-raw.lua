-- attack 10 (ICMP, with a raw socket): the agent itself cannot open one
-- (attack 10's ping is refused before anything is sent), so a process
-- beside it that holds CAP_NET_RAW, in its network namespace, sends the
-- ICMP echo requests to the canary off the allowlist: what the network layer
-- does with ICMP that is really sent. The canary's Ip InReceives, read from
-- outside, is the judge.
return {
  id = "10i",
  name = "ICMP echo off the allowlist from the agent's network namespace, by a process holding CAP_NET_RAW",
  layer = "network",
  stops = "internal network + seal: the agent's namespace has no route to the address (the kernel refuses to send)",
  targets = { "neighbour" },
  cap_add = { "NET_RAW" },
  expect = { "ICMP raw socket opened" },
  smolmachines = {
    stops = "smolvm's gateway applies the allowlist to ICMP (icmp_relay.rs): the echo requests leave the guest "
      .. "and are dropped there",
  },
  script = [=[
echo "effective capabilities: $(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status 2>/dev/null)"
out=$(timeout 6 ping -c 2 -W 2 "$HOST" 2>&1 | tr '\n' ' ')
echo "ping $HOST: $out"
case $out in
  *"are you root"*|*"raw socket"*|*"not permitted"*) echo "no raw socket here: the attack did not run";;
  *"packets transmitted"*|*"sendto:"*) echo "ICMP raw socket opened";;
esac
case $out in *" bytes from "*) echo "REACHED $HOST answered ICMP echo";; esac
]=],
}
