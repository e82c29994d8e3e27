-- attack 2 (through the proxy): a CONNECT to an IP literal
return {
  id = "2p",
  name = "a CONNECT to an IP literal through the bundle's proxy",
  layer = "content",
  requires = "filtering bundle",
  stops = "pipelock's allowlist and SSRF check (the bundle)",
}
