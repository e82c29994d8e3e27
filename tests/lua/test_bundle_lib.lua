-- cork.bundle and cork.supervise without Docker: the package list, the
-- content label, the host mirror, the build context; the bundle's Python
-- pieces that need no proxy (detectors, host and path rules, the filter's
-- strict config, the MCP messages); the supervise queue decided on the host.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local bundle = require "cork.bundle"

local root = os.getenv("CORK_ROOT")
local PY = "/usr/bin/python3"

-- ---- cork.bundle -----------------------------------------------------------------
local pk = bundle.packages()
T.ok(#pk >= 5, "the package list has the daemons' packages")
for _, want in ipairs({ "mitmproxy", "git", "openssh-client", "netcat-openbsd", "iproute2", "python3-yaml" }) do
  local found = false
  for _, p in ipairs(pk) do if p == want then found = true end end
  T.ok(found, "packages: " .. want)
end
local v1 = bundle.version()
T.like(v1, "^1%-%x+$", "a content label")
T.is(bundle.version(), v1, "stable")
T.isnt(bundle.version({ mirror = "http://mirror.invalid/debian" }), v1, "the mirror is part of it")
local tmp = cork.fs.tempdir("cork-bundle-lib")
local s <close> = cork.scope("test_bundle_lib")
s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
-- a changed daemon changes the label (CORK_PATH overrides an asset)
cork.fs.mkdir(tmp .. "/over/lua/cork/assets/bundle", tonumber("0755", 8))
local r = cork.proc.run({ os.getenv("CORK_BIN"), "script", "/dev/stdin" }, {
  env = { CORK_PATH = tmp .. "/over", PATH = os.getenv("PATH") },
  stdin = 'io.write(require("cork.bundle").version())' })
T.is(r.stdout, v1, "the same sources: the same label, in another process")
cork.fs.write(tmp .. "/over/lua/cork/assets/bundle/egress.py", bundle.asset("egress.py") .. "\n# changed\n")
r = cork.proc.run({ os.getenv("CORK_BIN"), "script", "/dev/stdin" }, {
  env = { CORK_PATH = tmp .. "/over", PATH = os.getenv("PATH") },
  stdin = 'io.write(require("cork.bundle").version() .. " " .. require("cork.bundle").rootfs_key())' })
T.isnt(r.stdout:match("^(%S+)"), v1, "a changed daemon changes the label")
T.is(r.stdout:match(" (%S+)$"), bundle.rootfs_key(), "but not the root filesystem's key (no new debootstrap)")
T.like(bundle.mirror("bookworm"), "^https?://", "the host's Debian mirror")
T.is(bundle.mirror("no-such-suite"), bundle.MIRROR, "a suite the host does not serve: deb.debian.org")

local ctx = bundle.context(tmp)
local list = cork.proc.run({ "tar", "-tf", ctx }).stdout
T.like(list, "Dockerfile\n", "the build context has the Dockerfile")
T.like(list, "filter%.py\n", "and the daemons")
T.like(bundle.asset("Dockerfile"), "ARG BASE=debian:bookworm%-slim", "FROM debian:bookworm-slim by default")
T.like(bundle.asset("Dockerfile"), "setup%.sh /tmp/cork%-bundle/packages", "the Dockerfile runs the one setup script")
T.like(bundle.asset("setup.sh"), "cork%-egress", "which makes the daemons' users")

-- ---- the Python pieces ----------------------------------------------------------------
if not cork.fs.exists(PY) or cork.proc.run({ PY, "-c", "import yaml" }).status ~= 0 then
  T.skip("no Debian python3 with yaml here", 19)
else
  local function py(code)
    local res = cork.proc.run({ PY, "-c", "import sys; sys.path.insert(0, sys.argv[1])\n" .. code,
      root .. "/lua/cork/assets/bundle" }, { timeout = 60 })
    return res.stdout, res.stderr, res.status
  end
  local out, err = py([[
import detectors
samples = {
  "aws_access_key": "AKIA" + "Q" * 16, "github_token": "ghp_" + "a" * 36, "github_pat": "github_pat_" + "b" * 36,
  "gitlab_pat": "glpat-" + "c" * 20, "slack_token": "xoxb-" + "1" * 15, "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----",
  "anthropic_key": "sk-ant-" + "d" * 10, "openai_key": "sk-proj-" + "e" * 10,
  "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2ln",
  "aws_secret_key": "aws_secret_access_key = " + "w" * 40}
for name, v in sorted(samples.items()):
    print(name, detectors.DEFAULT.scan("x " + v + " y"), detectors.DEFAULT.scan_url("https://h/?q=" + v.replace("-", "%2D")))
print("clean", detectors.DEFAULT.scan("an ordinary sentence, sk-ant- and AKIA alone"))
d2 = detectors.Detectors([{"name": "acme", "regex": "ACME-[0-9]{6}", "exempt_domains": ["*.acme.test"]}])
print("custom", d2.scan("id ACME-123456", "x.test"), d2.scan("id ACME-123456", "api.acme.test"))
]])
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  local all = true
  for _, l in ipairs(lines) do
    local name, a, b = l:match("^(%S+) (%S+) (%S+)$")
    if name and name ~= "clean" and name ~= "custom" and not (a == name and b == name) then all = false end
  end
  T.ok(all and #lines == 12, "each detector matches its shape, raw and percent-encoded", out .. err)
  T.like(out, "clean None", "ordinary text matches nothing")
  T.like(out, "custom acme None", "dlp.patterns add detectors; exempt_domains exempt")

  out = py([[
import base64, detectors
d = detectors.DEFAULT
k = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"
print("b64", d.scan_decoded("x=" + base64.b64encode(("token: " + k).encode()).decode()),
      d.scan_decoded("/p/zz" + base64.urlsafe_b64encode(("a" + k).encode()).decode().rstrip("=")),
      d.scan_url("https://h/?d=" + base64.b64encode(k.encode()).decode().replace("=", "%3D")))
print("hex", d.scan_decoded("q" + k.encode().hex()))
print("clean", d.scan_decoded("an ordinary sentence with YWJjZGVmZ2hpamtsbW5vcA== and deadbeefdeadbeefdeadbeef"))
t = [100.0]
f = detectors.Fragments(max_bytes=65536, window_minutes=5, clock=lambda: t[0])
h1, h2 = k[:20], k[20:]
print("halves", d.scan(h1), d.scan(h2))
print("first", f.check([("query:d", h1)], d)); f.add([("query:d", h1), ("header:user-agent", "Wget")])
print("second", f.check([("query:d", h2)], d), f.check([("query:e", h2)], d))
g = detectors.Fragments(clock=lambda: t[0]); g.add([("body", h2)]); print("reversed", g.check([("body", h1)], d))
t[0] += 301
print("expired", f.check([("query:d", h2)], d))
b = detectors.Fragments(max_bytes=64, clock=lambda: t[0]); b.add([("query:d", h1)]); b.add([("query:x", "y" * 80)])
print("evicted", b.check([("query:d", h2)], d), b.size <= 64 or b.size)
]])
  T.like(out, "^b64 github_token %(base64%) github_token %(base64%) github_token %(base64%)\n",
    "DLP decodes base64 runs (standard, URL-safe, unpadded, after a prefix, in a URL)")
  T.like(out, "\nhex github_token %(hex%)\n", "and hex runs")
  T.like(out, "\nclean None\n", "base64 and hex that hide no key: clean")
  T.like(out, "\nhalves None None\nfirst None\nsecond github_token None\n",
    "fragment reassembly: two clean halves of a key in the same place: caught at the second; another place: not joined")
  T.like(out, "\nreversed github_token\n", "the halves in either order")
  T.like(out, "\nexpired None\n", "fragments older than window_minutes are gone")
  T.like(out, "\nevicted None True\n", "max_buffer_bytes bounds the buffer (oldest out first)")

  out = py([[
import common
print(common.normalize_ip("0x7f.1"), common.normalize_ip("2130706433"), common.normalize_ip("017700000001"), common.normalize_ip("api.test"))
print(common.host_allowed("API.Test", ["api.test"]), common.host_allowed("a.b.wild.test", ["*.wild.test"]), common.host_allowed("wild.test", ["*.wild.test"]),
      common.host_allowed("evilwild.test", ["*.wild.test"]), common.host_allowed("0x7f.0.0.1", ["127.0.0.1"]), common.host_allowed("127.0.0.1", ["localhost"]))
print(common.domain_match("wild.test", ["*.wild.test"]), common.domain_match("a.wild.test", ["*.wild.test"]))
import ipaddress
al = [ipaddress.ip_network("10.1.0.0/16")]
print(common.internal("10.1.2.3", al), common.internal("10.2.0.1", al), common.internal("203.0.113.7", al), common.internal("::ffff:127.0.0.1", []))
]])
  T.like(out, "^127%.0%.0%.1 127%.0%.0%.1 127%.0%.0%.1 None\n", "hex, integer and octal IPv4 literals are normalised")
  T.like(out, "\nTrue True True False True False\n", "api_allowlist: case, *.x with its apex, no suffix tricks, IPs exactly")
  T.like(out, "\nFalse True\n", "passthrough_domains: *.x is the subdomains only")
  T.like(out, "\nFalse True False True\n", "internal addresses, ssrf.ip_allowlist, IPv4-mapped IPv6")

  out = py([[
import egress
print(egress.path_allowed("/v1/x", ["/v1"]), egress.path_allowed("/v1", ["/v1"]), egress.path_allowed("/v1x", ["/v1"]),
      egress.path_allowed("/v1/../admin", ["/v1"]), egress.path_allowed("/v1/%2e%2e/admin", ["/v1"]),
      egress.path_allowed("/repos/acme/app", ["/repos/acme/*"]), egress.path_allowed("/anything", []))
]])
  T.is(out, "True True False False False True True\n", "route paths: prefixes, no traversal, /x/* globs, none = all")

  cork.fs.write(tmp .. "/bad.yaml", "mode: strict\napi_allowlist: [a]\nsurprise: 1\n")
  cork.fs.write(tmp .. "/two.yaml", "mode: strict\napi_allowlist: [a]\n---\nmode: audit\n")
  cork.fs.write(tmp .. "/empty.yaml", "mode: strict\n")
  out = py(([[
import sys, types
sys.modules["mitmproxy"] = types.ModuleType("mitmproxy")
sys.modules["mitmproxy"].ctx = None
sys.modules["mitmproxy"].http = None
import filter as f
for n in ("bad", "two", "empty"):
    try:
        f.Config("%s/" + n + ".yaml"); print(n, "loaded")
    except Exception as e:
        print(n, "refused:", e)
]]):format(tmp))
  T.like(out, "bad refused: unknown key surprise", "pipelock.yaml: an unknown key is an error")
  T.like(out, "two refused: expected exactly one", "a second document is an error")
  T.like(out, "empty refused: mode strict needs a non%-empty api_allowlist", "strict needs an allowlist")

  out = py([[
import json, supervise
print(json.dumps(supervise.handle({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})["result"]["protocolVersion"]))
print(supervise.handle({"jsonrpc": "2.0", "method": "notifications/initialized"}))
print(supervise.handle({"jsonrpc": "2.0", "id": 2, "method": "nope"})["error"]["code"])
r = supervise.handle({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "request_allowlist_host", "arguments": {"host": "bad host!", "justification": "x"}}})
print(r["result"]["isError"])
]])
  T.is(out, '"2025-06-18"\nNone\n-32601\nTrue\n', "MCP: initialize, a notification has no answer, unknown method, bad arguments")
end

-- ---- cork.supervise on the host -------------------------------------------------------------
local state = tmp .. "/state"
local sr = cork.proc.run({ os.getenv("CORK_BIN"), "script", "/dev/stdin" }, {
  env = { XDG_STATE_HOME = state, PATH = os.getenv("PATH") }, stdin = [[
local cork = require "cork"
local sv = require "cork.supervise"
local journal = require "cork.journal"
local slug = "sv-abc123"
local sd = journal.dir(slug)
cork.fs.mkdir(sd .. "/supervise/queue", tonumber("0700", 8))
cork.fs.mkdir(sd .. "/pipelock", tonumber("0700", 8))
cork.fs.mkdir(sd .. "/egress", tonumber("0700", 8))
cork.fs.write(sd .. "/pipelock/pipelock.yaml", cork.yaml.encode({ mode = "strict", api_allowlist = { "a.test" } }))
cork.fs.write(sd .. "/egress/routes.yaml", cork.yaml.encode({ version = 1, listen = "0.0.0.0:9099" }))
cork.fs.write(sd .. "/journal.jsonl", "")
journal.open(slug, { backend = "docker", bottle = "sv" })
local function req(id, kind, host, paths)
  cork.fs.write(sd .. "/supervise/queue/" .. id .. ".json", cork.json.encode({ id = id, kind = kind, host = host,
    paths = paths, justification = "because" }))
end
req("20260101000000-aaaaaa", "route", "new.test", { "/api" })
req("20260101000001-bbbbbb", "allowlist", "deny.test")
local pend = sv.pending()
print("pending", #pend, pend[1].id, pend[1].slug)
local calls = {}
local fake = { request = function(_, m, p, o) calls[#calls + 1] = m .. " " .. p .. " " .. o.query.signal end }
local inode = cork.fs.stat(sd .. "/pipelock/pipelock.yaml").ino
local r = sv.decide("20260101000000-aaaaaa", "approve", { note = "ok", docker = fake })
print("approved", r.status, #r.changed, calls[1])
print("inode kept", cork.fs.stat(sd .. "/pipelock/pipelock.yaml").ino == inode)
print("allowlist", table.concat(cork.yaml.decode(cork.fs.read(sd .. "/pipelock/pipelock.yaml")).api_allowlist, ","))
local route = cork.yaml.decode(cork.fs.read(sd .. "/egress/routes.yaml")).routes[1]
print("route", route.host, route.auth, route.paths[1])
local before = cork.fs.read(sd .. "/pipelock/pipelock.yaml")
sv.decide("20260101000001-bbbbbb", "deny", { docker = fake })
print("deny unchanged", cork.fs.read(sd .. "/pipelock/pipelock.yaml") == before, #calls)
print("decision", cork.json.decode(cork.fs.read(sd .. "/supervise/queue/20260101000000-aaaaaa.decision.json")).note)
local ok, e = pcall(sv.decide, "20260101000000-aaaaaa", "deny", { docker = fake })
print("twice", e.kind)
ok, e = pcall(sv.decide, "nope", "deny", { docker = fake })
print("missing", e.kind)
local n = 0
for _ in cork.fs.read(sd .. "/supervise/audit.log"):gmatch("[^\n]+") do n = n + 1 end
print("audit", n, #sv.pending())
]] })
local o = sr.stdout:gsub("\t", " ")
T.like(o, "pending 2 20260101000000%-aaaaaa sv%-abc123", "pending lists the queue, oldest first", sr.stderr)
T.like(o, "approved approved 2 POST /containers/cork%-sv%-abc123%-bundle/kill HUP", "an approval rewrites both configs and sends SIGHUP")
T.like(o, "inode kept true", "in place (the single-file bind mount keeps seeing it)")
T.like(o, "allowlist a.test,new.test", "the host joins the allowlist")
T.like(o, "route new.test none /api", "and an auth: none route with its paths")
T.like(o, "deny unchanged true 1", "a denial changes nothing and signals nobody")
T.like(o, "decision ok", "the decision file carries the note")
T.like(o, "twice conflict", "a request is decided once")
T.like(o, "missing not_found", "an unknown id: not_found")
T.like(o, "audit 2 0", "both decisions audited; nothing pending")
-- a cork-built bundle image of another cork: the launch warns (its daemons
-- may refuse this cork's configs); other images are not judged
do
  local dv = bundle.daemons_version()
  T.like(dv, "^1%-%x+$", "daemons_version: a content hash")
  local function img(labels) return { Config = { Labels = labels } } end
  T.like(bundle.stale("b:1", img({ [bundle.LABEL] = "1-old" })) or "", "built by another version of cork.*cork run bundle",
    "stale: a cork-built image without the daemons' label (built before it existed)")
  T.ok(bundle.stale("b:1", img({ [bundle.LABEL] = "1-x", [bundle.DAEMONS_LABEL] = "1-other" })) ~= nil,
    "stale: other daemons")
  T.is(bundle.stale("b:1", img({ [bundle.LABEL] = "1-x", [bundle.DAEMONS_LABEL] = dv })), nil, "current: no warning")
  T.is(bundle.stale("b:1", img({})), nil, "an image cork did not build: not judged")
  T.is(bundle.stale("b:1", {}), nil, "no labels at all: not judged")
end
T.done()
