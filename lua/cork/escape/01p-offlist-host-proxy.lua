-- attack 1 (through the proxy): a CONNECT to a host off the allowlist
return {
  id = "1p",
  name = "a host off the allowlist, through the bundle's proxy",
  layer = "content",
  requires = "filtering bundle",
  stops = "pipelock's allowlist (the bundle)",
}
