-- attack 5: a push of a commit with a key-shaped string through git-gate
return {
  id = 5,
  name = "a push of a key-shaped string through git-gate",
  layer = "content",
  requires = "filtering bundle",
  stops = "git-gate's secret scan (the bundle)",
}
