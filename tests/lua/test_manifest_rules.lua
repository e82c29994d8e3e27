-- Every manifest rule has a failing fixture under tests/fixtures/manifest/bad
-- whose first "# expect:" line is the exact error message.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local manifest = require "cork.manifest"

local dir = os.getenv("CORK_ROOT") .. "/tests/fixtures/manifest/bad"
local files = cork.fs.list(dir)
T.ok(#files >= 40, "at least 40 failing fixtures (" .. #files .. ")")
for _, name in ipairs(files) do
  local text = cork.fs.read(dir .. "/" .. name)
  local want = text:match("# expect: ([^\n]*)")
  if not want then
    T.ok(false, name .. " has an # expect: line")
  else
    local kind = name:find("%.agent%.") and "agent" or "bottle"
    local err = T.raises(function() manifest.parse(text, name, kind) end, "manifest", nil, name .. " fails")
    if err then
      T.is(err.message, want, name .. ": exact message")
      T.is(err.file, name, name .. ": error names the file")
      T.is(type(err.errors) == "table" and #err.errors, 1, name .. ": exactly one problem")
    end
  end
end

-- Several problems are all reported, in document order.
local err = T.raises(function()
  manifest.parse("supervise: 1\nrpompt: x\nallowlist: a\n", "many.yaml", "bottle")
end, "manifest", nil, "several problems")
T.same(err and err.errors, {
  "many.yaml:1:1: supervise: expected a boolean, got an integer",
  "many.yaml:2:1: rpompt: unknown key (did you mean \"prompt\"?)",
  "many.yaml:3:1: allowlist: expected a list, got a string",
}, "all problems in document order")
T.is(err and err.message, table.concat(err and err.errors or {}, "\n"), "message lists them one per line")

-- A manifest never crashes cork: odd inputs give manifest errors or load.
for _, text in ipairs({"", "~", "---\n", "42", "\"str\"", "[]", "{}", "? [a]\n: b\n", "1: x\n",
  "env: {1: x}\n", "env: []\n", "git: {remotes: [null]}\n", "egress: {routes: [1, 2]}\n",
  "&a [*a]\n", "env:\n  A: !!binary aGVsbG8=\n", "\0\1\2"}) do
  local ok, e = pcall(manifest.parse, text, "odd.yaml", "bottle")
  T.ok(ok or cork.is_error(e, "manifest"), ("odd input [%s]: loads or fails cleanly"):format(text:gsub("%c", "."):gsub("#", "")),
    not ok and tostring(e.message or e) or nil)
end

-- did-you-mean
T.is(require("cork.schema").suggest("remots", {"remotes", "user"}), "remotes", "suggest: one deletion")
T.is(require("cork.schema").suggest("rpompt", {"prompt", "agent"}), "prompt", "suggest: transposition")
T.is(require("cork.schema").suggest("Env", {"env"}), "env", "suggest: case")
T.is(require("cork.schema").suggest("xyzzy", {"env", "git"}), nil, "suggest: nothing close")
T.done()
