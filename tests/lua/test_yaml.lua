-- cork.yaml: core schema, positions, file:line:col errors, round trips.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local yaml, null = cork.yaml, cork.json.null

local v = yaml.decode([[
s: hello
q: "123"
i: 42
h: 0x1f
o: 0o17
n: -7
f: 2.5
e: 1e3
t: true
F: false
nul: null
tilde: ~
empty:
yes_is_string: yes
list: [a, 'b', 3]
nested:
  deep:
    - x: 1
str_tag: !!str 10
multi: |
  line one
  line two
]])
T.is(v.s, "hello", "plain string")
T.is(v.q, "123", "quoted number stays a string")
T.is(math.type(v.i), "integer", "integer"); T.is(v.i, 42, "integer value")
T.is(v.h, 31, "hex"); T.is(v.o, 15, "octal"); T.is(v.n, -7, "negative")
T.is(v.f, 2.5, "float"); T.is(v.e, 1000.0, "exponent")
T.is(v.t, true, "true"); T.is(v.F, false, "false")
T.is(v.nul, null, "null is cork.json.null"); T.is(v.tilde, null, "~"); T.is(v.empty, null, "empty value")
T.is(v.yes_is_string, "yes", "yes is a string in the core schema")
T.same(v.list, { "a", "b", 3 }, "flow sequence")
T.is(v.nested.deep[1].x, 1, "nesting")
T.is(v.str_tag, "10", "!!str keeps a string")
T.is(v.multi, "line one\nline two\n", "literal block")
T.is(yaml.null, null, "yaml.null is json.null")

local doc, pos = yaml.decode("a: 1\nb:\n  c: [x, y]\n  d: 2\n", { positions = true, filename = "f.yaml" })
T.same(pos[doc].a, { line = 1, col = 1 }, "key position")
T.same(pos[doc].b, { line = 2, col = 1 }, "key position of a block")
T.same(pos[doc.b].d, { line = 4, col = 3 }, "nested key position")
T.same(pos[doc.b.c][2], { line = 3, col = 10 }, "sequence item position")
T.same(pos[doc.b][0], { line = 3, col = 3 }, "table's own position")

T.raises(function() yaml.decode("a: [1, 2\n", { filename = "bad.yaml" }) end, "yaml",
  "^bad%.yaml:2:1: did not find expected ',' or ']'", "parse error has file:line:col")
T.raises(function() yaml.decode("a: 1\na: 2\n", { filename = "dup.yaml" }) end, "yaml",
  "^dup%.yaml:2:1: duplicate key a$", "duplicate keys are errors")
T.raises(function() yaml.decode("a: *nope\n") end, "yaml", "<string>:1:4: ", "unknown alias")
T.raises(function() yaml.decode("a: 1\n---\nb: 2\n") end, "yaml", "more than one document", "one document only")
T.raises(function() yaml.decode(string.rep("[", 1000)) end, "yaml", "too deeply nested", "depth limit")
T.raises(function() yaml.decode("x", { file = "y" }) end, nil, "unknown option 'file'", "unknown option")
T.is(yaml.decode(""), null, "empty stream")
local a = yaml.decode("base: &b {x: 1}\nuse: *b\n")
T.is(a.use.x, 1, "anchors and aliases")

-- round trips
local src = {
  str = "hello", num_str = "42", bool_str = "true", null_str = "null", empty = "",
  colon = "a: b", hash = "# no", lead = " space", multi = "l1\nl2\n", int = 7, float = 1.5,
  whole_float = 3.0, yes = true, no = false, list = { 1, "two", { three = 3 } },
  map = { nested = { deeper = "x" } }, seq_empty = yaml.sequence({}), map_empty = {},
  unicode = "snow ☃", quote = 'say "hi"',
}
local back = yaml.decode(yaml.encode(src))
back.seq_empty = yaml.sequence(back.seq_empty)
T.same(back, src, "encode/decode round trip keeps types")
T.is(math.type(back.whole_float), "float", "3.0 stays a float")
T.is(yaml.encode({ b = 1, a = 2, c = { 3 } }), "a: 2\nb: 1\nc:\n- 3\n", "keys sorted, block style")
T.raises(function() yaml.encode({ f = print }) end, nil, "cannot encode a function", "functions are refused")
local cyc = {}; cyc.self = cyc
T.raises(function() yaml.encode(cyc) end, nil, "nesting too deep", "cycles are refused")
T.done()
