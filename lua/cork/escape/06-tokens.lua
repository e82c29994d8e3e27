-- attack 6: the bundle's tokens in the agent's env, its files and /proc
return {
  id = 6,
  name = "the egress token in the agent's env, files or /proc",
  layer = "network",
  stops = "cork gives egress tokens to the bundle only; the agent's env holds its own secrets",
  -- escaped when the dump holds this planted secret; the agent secret must
  -- be in it (else the dump itself did not work)
  secrets = { "egress_token" },
  sanity = { "agent_secret" },
  script = [[
{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
  for d in "$HOME" /tmp /run /etc /var /opt /srv /mnt /cork /bundle; do
    [ -d "$d" ] && grep -rs . "$d"
  done
} 2>/dev/null | tr '\0' '\n'
]],
}
