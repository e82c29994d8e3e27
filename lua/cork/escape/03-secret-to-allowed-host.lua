-- attack 3: the planted secret sent to an allowed host (path, query, header,
-- body; base64; split across two requests)
return {
  id = 3,
  name = "the planted secret sent to an allowed host",
  layer = "content",
  requires = "filtering bundle",
  stops = "pipelock's DLP (the bundle)",
}
