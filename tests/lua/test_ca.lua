-- cork.ca: minting CAs and leaf certificates, checked with the openssl CLI,
-- a real TLS handshake (curl against openssl s_server on 127.0.0.1) and
-- mitmproxy loading the minted CA from a confdir. Runs under umask 000 so
-- that file modes prove themselves.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc, fs = cork.proc, cork.fs

if os.getenv("CORK_TEST_UMASK0") ~= "1" then
  local me = debug.getinfo(1, "S").source:gsub("^@", "")
  local r = proc.run({ "sh", "-c", 'umask 000 && exec "$0" script "$1"', os.getenv("CORK_BIN"), me },
    { env = { CORK_TEST_UMASK0 = "1" }, timeout = 300 })
  io.stdout:write(r.stdout)
  io.stderr:write(r.stderr)
  os.exit(r.status == 0 and 0 or 1)
end

local ca = require "cork.ca"

local function sh(cmd, ...)
  return proc.run({ "sh", "-c", cmd, "sh", ... }, { timeout = 60 })
end
local function have(prog) return sh('command -v "$1" >/dev/null', prog).status == 0 end
local function mode(path) local st = fs.stat(path); return st and st.mode end
local function x509_text(path) return sh('openssl x509 -noout -text -in "$1"', path).stdout end

T.is(sh("umask").stdout, "0000\n", "running under umask 000")

local tmp = fs.tempdir("cork-ca")
local root = tmp .. "/state/bottle/ca"          -- three levels that do not exist yet

-- ---- mint ------------------------------------------------------------------
local c = ca.mint { dir = root, name = "pipelock", common_name = "cork test CA", mitmproxy = true }
T.same(c, { cert = root .. "/pipelock.pem", key = root .. "/pipelock-key.pem",
  pem = root .. "/mitmproxy-ca.pem", fingerprint = c.fingerprint, dir = root, name = "pipelock" },
  "mint returns the paths")
T.like(c.fingerprint, "^%x+$", "fingerprint is hex")
T.is(#c.fingerprint, 64, "a sha256 fingerprint")
T.is(mode(root), 448, "the CA dir is 0700 under umask 000")
T.is(mode(tmp .. "/state/bottle"), 448, "and so is every parent cork created")
T.is(mode(c.key), 384, "key file 0600")
T.is(mode(c.pem), 384, "combined key+cert 0600")
T.is(mode(c.cert), 420, "certificate 0644")
T.is(mode(root .. "/mitmproxy-ca-cert.pem"), 420, "mitmproxy-ca-cert.pem 0644")
T.same(fs.list(root), { "mitmproxy-ca-cert.pem", "mitmproxy-ca.pem", "pipelock-key.pem", "pipelock.pem" },
  "exactly the expected files, no temporaries left")
T.like(fs.read(c.pem), "^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n.-%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n",
  "mitmproxy-ca.pem is the key followed by the certificate")
T.is(fs.read(root .. "/mitmproxy-ca-cert.pem"), fs.read(c.cert), "mitmproxy-ca-cert.pem is the certificate")

local text = x509_text(c.cert)
T.like(text, "X509v3 Basic Constraints: critical\n%s+CA:TRUE, pathlen:0", "basicConstraints CA:TRUE critical")
T.like(text, "X509v3 Key Usage: critical\n%s+Certificate Sign, CRL Sign", "keyUsage keyCertSign+cRLSign critical")
T.like(text, "X509v3 Subject Key Identifier:", "subject key identifier")
T.like(text, "Subject: CN = cork test CA", "subject CN")
T.like(text, "Issuer: CN = cork test CA", "self-signed")
T.like(text, "ASN1 OID: prime256v1", "default key is EC P-256")
T.like(text, "Signature Algorithm: ecdsa%-with%-SHA256", "signed with SHA-256")
local serial = text:match("Serial Number:%s*\n%s*([%x:]+)")
T.is(serial and #serial:gsub(":", "") or 0, 32, "a 128-bit serial")
T.like(sh('openssl pkey -in "$1" -noout -text 2>&1 | head -1', c.key).stdout, "Private%-Key: %(256 bit",
  "the key file is a readable EC key")

local fp = sh('openssl x509 -noout -fingerprint -sha256 -in "$1"', c.cert).stdout
T.is(fp:match("=(.+)\n"):gsub(":", ""):lower(), c.fingerprint, "fingerprint matches openssl's")
T.is(ca.fingerprint(c.cert), c.fingerprint, "ca.fingerprint(path)")
T.is(ca.fingerprint(c.pem), c.fingerprint, "ca.fingerprint reads the cert from the combined file")

local now = os.time()
local info = ca.info(c.cert)
T.is(info.subject, "CN=cork test CA", "info.subject")
T.is(info.issuer, "CN=cork test CA", "info.issuer")
T.is(info.is_ca, true, "info.is_ca")
T.ok(info.not_before <= now - 3000 and info.not_before >= now - 3700,
  "validity starts about an hour in the past (clock skew)")
T.ok(math.abs(info.not_after - (now + 3650 * 86400)) < 120, "default 3650 days")
T.is(info.fingerprint, c.fingerprint, "info.fingerprint")
T.is(#info.serial, 32, "info.serial is 16 bytes of hex")
T.same(info.dns, {}, "a CA has no DNS names")

-- ---- issue -----------------------------------------------------------------
local leafdir = tmp .. "/leaf"
local leaf = ca.issue { ca = c, dir = leafdir, name = "server", dns = { "localhost", "svc.test" },
  ips = { "127.0.0.1", "::1" }, days = 30 }
T.same(leaf, { cert = leafdir .. "/server.pem", key = leafdir .. "/server-key.pem",
  fingerprint = leaf.fingerprint, dir = leafdir, name = "server" }, "issue returns the paths")
T.is(mode(leaf.key), 384, "leaf key 0600")
T.is(mode(leafdir), 448, "leaf dir 0700")
local v = sh('openssl verify -CAfile "$1" "$2" 2>&1', c.cert, leaf.cert)
T.is(v.stdout, leaf.cert .. ": OK\n", "openssl verify -CAfile accepts the leaf")
text = x509_text(leaf.cert)
T.like(text, "X509v3 Basic Constraints: critical\n%s+CA:FALSE", "leaf is not a CA")
T.like(text, "TLS Web Server Authentication, TLS Web Client Authentication", "serverAuth + clientAuth")
T.like(text, "DNS:localhost, DNS:svc%.test, IP Address:127%.0%.0%.1, IP Address:0:0:0:0:0:0:0:1",
  "subject alternative names")
T.like(text, "X509v3 Authority Key Identifier:", "authority key identifier")
T.like(text, "Subject: CN = localhost", "common name defaults to the first DNS name")
info = ca.info(leaf.cert)
T.is(info.is_ca, false, "leaf info.is_ca")
T.is(info.issuer, "CN=cork test CA", "leaf issuer")
T.same(info.dns, { "localhost", "svc.test" }, "info.dns")
T.same(info.ips, { "127.0.0.1", "::1" }, "info.ips")
T.ok(math.abs(info.not_after - (now + 30 * 86400)) < 120, "days = 30")

-- RSA, both sizes
local rsa = ca.mint { dir = tmp .. "/rsa", key = "rsa-2048", common_name = "rsa CA", days = 10 }
T.like(x509_text(rsa.cert), "Public%-Key: %(2048 bit%)", "rsa-2048 CA")
local rleaf = ca.issue { ca = rsa, dir = tmp .. "/rsa", name = "leaf", key = "rsa-2048", ips = { "127.0.0.1" } }
T.is(sh('openssl verify -CAfile "$1" "$2" 2>&1', rsa.cert, rleaf.cert).stdout, rleaf.cert .. ": OK\n",
  "an RSA leaf verifies")
T.like(x509_text(rleaf.cert), "Digital Signature, Key Encipherment", "RSA leaf key usage")
local big = ca.mint { dir = tmp .. "/rsa4096", key = "rsa-4096" }
T.like(x509_text(big.cert), "Public%-Key: %(4096 bit%)", "rsa-4096 CA")
T.is(ca.info(big.cert).subject, "CN=cork CA", "default common name")

-- ---- a real TLS handshake ------------------------------------------------------
local function free_server(argv_fn, ready_pattern, log)
  for _ = 1, 10 do
    local port = math.random(20000, 45000)
    local p = proc.spawn(argv_fn(port), { stdout = log, stderr = log })
    local t0 = cork.time()
    while cork.time() - t0 < 15 do
      local out = fs.exists(log) and fs.read(log) or ""
      if out:find(ready_pattern) then return p, port end
      if not p:running() then break end
      cork.sleep(0.05)
    end
    p:kill(); p:wait()
    fs.remove(log)
  end
  error("could not start a server on 127.0.0.1")
end

local other = ca.mint { dir = tmp .. "/other", common_name = "another CA" }
local srv, port = free_server(function(p)
  return { "openssl", "s_server", "-accept", "127.0.0.1:" .. p, "-www", "-cert", leaf.cert,
    "-key", leaf.key }
end, "ACCEPT", tmp .. "/s_server.log")
local url = ("https://localhost:%d/"):format(port)
local resolve = ("localhost:%d:127.0.0.1"):format(port)
local r = proc.run({ "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", resolve,
  "--cacert", c.cert, url }, { timeout = 30 })
T.is(r.status, 0, "curl --cacert CA: TLS handshake with the issued leaf succeeds")
T.is(r.stdout, "200", "and the server answers")
r = proc.run({ "curl", "-sS", "-o", "/dev/null", "--cacert", c.cert,
  ("https://127.0.0.1:%d/"):format(port) }, { timeout = 30 })
T.is(r.status, 0, "the IP SAN works too (https://127.0.0.1)")
r = proc.run({ "curl", "-sS", "-o", "/dev/null", "--resolve", resolve, "--cacert", other.cert, url },
  { timeout = 30 })
T.is(r.status, 60, "curl with another CA fails verification (exit 60)")
T.like(r.stderr, "certificate", "and says why")

-- ---- mitmproxy loads the CA from a confdir and intercepts ------------------------
local function ensure_mitmdump()
  if have("mitmdump") then return true end
  if os.getenv("CORK_TEST_NO_INSTALL") ~= "1" and have("apt-get") then
    T.diag("installing Debian's mitmproxy for the interception test (apt-get)")
    local ok = proc.run({ "apt-get", "install", "-y", "-q", "mitmproxy" },
      { env = { DEBIAN_FRONTEND = "noninteractive" }, timeout = 600 })
    if ok.status ~= 0 then
      proc.run({ "apt-get", "update", "-q" }, { timeout = 300 })
      proc.run({ "apt-get", "install", "-y", "-q", "mitmproxy" },
        { env = { DEBIAN_FRONTEND = "noninteractive" }, timeout = 600 })
    end
  end
  return have("mitmdump")
end

if ensure_mitmdump() then
  local conf = tmp .. "/mitm"
  local mc = ca.mint { dir = conf, name = "egress", common_name = "cork mitm CA", mitmproxy = true }
  local before = fs.read(conf .. "/mitmproxy-ca.pem")
  local mitm, mport = free_server(function(p)
    return { "mitmdump", "--set", "confdir=" .. conf, "--listen-host", "127.0.0.1",
      "--listen-port", tostring(p), "--set", "ssl_verify_upstream_trusted_ca=" .. c.cert,
      "--set", "connection_strategy=lazy" }
  end, "listening at", tmp .. "/mitm.log")
  r = proc.run({ "curl", "-sS", "-v", "-o", "/dev/null", "-w", "%{http_code}",
    "--proxy", ("http://127.0.0.1:%d"):format(mport), "--cacert", mc.cert,
    ("https://localhost:%d/"):format(port) }, { timeout = 60 })
  T.is(r.status, 0, "curl through mitmdump, trusting only the minted mitm CA, succeeds")
  T.is(r.stdout, "200", "the upstream answered through the proxy")
  T.like(r.stderr, "issuer: CN=cork mitm CA", "the certificate curl saw was forged by our CA (intercepted)")
  r = proc.run({ "curl", "-sS", "-o", "/dev/null", "--proxy", ("http://127.0.0.1:%d"):format(mport),
    "--cacert", c.cert, ("https://localhost:%d/"):format(port) }, { timeout = 60 })
  T.is(r.status, 60, "trusting the upstream's CA instead fails: mitmproxy really intercepts")
  mitm:kill(); mitm:wait()
  T.like(fs.read(tmp .. "/mitm.log"), "GET https://localhost:%d+/", "mitmdump logged the request")
  T.is(fs.read(conf .. "/mitmproxy-ca.pem"), before, "mitmproxy used our CA and did not replace it")
else
  -- On stderr too (the outer wrapper turns it into TAP comments; the test
  -- also prints it to the terminal), so that it cannot go unnoticed.
  io.stderr:write("SKIP ****************************************************************\n",
    "SKIP mitmproxy interception NOT TESTED: mitmdump missing and Debian's\n",
    "SKIP mitmproxy package could not be installed\n",
    "SKIP ****************************************************************\n")
  T.skip("mitmproxy not installable", 6)
end
srv:kill(); srv:wait()

-- ---- existing files, overwrite --------------------------------------------------
local e = T.raises(function() ca.mint { dir = root, name = "pipelock" } end, "exists",
  "pipelock%.pem already exists %(pass overwrite = true to replace it%)$", "mint refuses to clobber")
local c2 = ca.mint { dir = root, name = "pipelock", overwrite = true, mitmproxy = true }
T.isnt(c2.fingerprint, c.fingerprint, "overwrite = true mints a new CA")
T.is(mode(c2.key), 384, "the replaced key is still 0600")
T.is(mode(c2.pem), 384, "the replaced combined file is still 0600")

-- ---- errors, and no key material in them ------------------------------------------
local function no_key_material(err, name)
  local blob = cork.json.encode(err)
  T.ok(not blob:find("PRIVATE KEY", 1, true) and not blob:find("MII", 1, true)
    and not blob:find("BEGIN", 1, true), name .. ": no key material in the error", blob)
end

e = T.raises(function() ca.issue { ca = { cert = c.cert, key = tmp .. "/missing.pem" }, dir = tmp .. "/x" } end,
  "not_found", "^opening .*/missing%.pem: No such file or directory$", "missing CA key: not_found")
e = T.raises(function() ca.issue { ca = { cert = c2.cert, key = other.key }, dir = tmp .. "/x" } end,
  "invalid", "other/ca%-key%.pem does not match the certificate .*/pipelock%.pem$", "key of another CA: invalid")
no_key_material(e, "mismatched key")
e = T.raises(function() ca.issue { ca = { cert = c.key, key = c.key }, dir = tmp .. "/x" } end,
  "invalid", "pipelock%-key%.pem holds no PEM certificate$", "a key file given as the certificate")
no_key_material(e, "key as certificate")
e = T.raises(function() ca.issue { ca = { cert = c2.cert, key = c2.cert }, dir = tmp .. "/x" } end,
  "invalid", "holds no unencrypted PEM private key$", "a certificate given as the key")
no_key_material(e, "certificate as key")
e = T.raises(function() ca.issue { ca = leaf, dir = tmp .. "/x" } end, "invalid",
  "server%.pem is not a CA certificate$", "a leaf cannot issue")
sh('openssl pkey -in "$1" -aes256 -passout pass:secret -out "$2"', c2.key, tmp .. "/enc.pem")
e = T.raises(function() ca.issue { ca = { cert = c2.cert, key = tmp .. "/enc.pem" }, dir = tmp .. "/x" } end,
  "invalid", "holds no unencrypted PEM private key", "an encrypted key: invalid, and no prompt")
no_key_material(e, "encrypted key")
T.ok(not fs.exists(tmp .. "/x"), "failed issues created nothing")

T.raises(function() ca.mint { dir = tmp .. "/y", key = "dsa-1024" } end, "usage",
  '^mint: key must be "ec%-p256", "rsa%-2048" or "rsa%-4096", got "dsa%-1024"$', "unknown key type")
T.raises(function() ca.mint { dir = tmp .. "/y", days = 0 } end, "usage", "^mint: days must be 1%.%.36500, got 0$",
  "days out of range")
T.raises(function() ca.mint { dir = tmp .. "/y", name = "../evil" } end, "usage", "must be a plain file name",
  "a name with a path")
T.raises(function() ca.mint { dri = tmp } end, nil, "unknown option 'dri'", "unknown option named")
T.raises(function() ca.mint {} end, nil, "option 'dir' is required", "dir is required")
T.raises(function() ca.issue { ca = c, dir = tmp .. "/y", ips = { "localhost" } } end, "usage",
  "^issue: ips%[1%] 'localhost' is not an IP address$", "bad IP in ips")
T.raises(function() ca.issue { ca = c, dir = tmp .. "/y", dns = { "a b" } } end, "usage",
  "^issue: dns%[1%] 'a b' is not a DNS name$", "bad DNS name")
T.raises(function() ca.fingerprint(tmp .. "/nope.pem") end, "not_found", nil, "fingerprint of a missing file")
T.raises(function() ca.info(c.key) end, "invalid", "holds no PEM certificate", "info of a key file")
T.ok(not fs.exists(tmp .. "/y"), "usage errors created nothing")

fs.remove(tmp, { recursive = true })
T.done()
