"""cork bundle: the filter, in pipelock's place (a mitmproxy 8.1 addon).

Reads the pipelock.yaml cork writes, with pipelock's meaning for each key,
and answers a block the way pipelock does: 403 with a plain-text body
`blocked: <reason>` (`CONNECT blocked: <reason>` for a tunnel), 502 for a
refused dial. What it enforces, in pipelock's order:
  1. only http and https; IP literals normalised (hex, octal, integer);
  2. the api_allowlist (strict mode), then DLP on the URL and host, before
     any DNS lookup; a failed lookup blocks;
  3. at dial time the host is resolved again and refused when ANY answer is
     internal (unless ssrf.ip_allowlist lets it through), and the validated
     address itself is dialled: no DNS rebinding;
  4. TLS is intercepted with the bottle's CA except passthrough_domains,
     whose SNI must match the CONNECT host before they are spliced;
  5. an inner request whose Host differs from the CONNECT target: 403
     `authority mismatch`;
  6. DLP over the URL, the headers and the body (max_body_bytes, 5 MiB: a
     larger body is blocked), each also with its base64 and hex runs decoded;
  7. cross_request_detection.fragment_reassembly: a forwarded request's
     values are kept by place (query parameter, path position, header, form
     field, the body's ends) and a new request's values are joined with them
     and scanned, so a key sent in two halves is caught at the second.
SIGHUP reloads the file; an invalid new config leaves the old one in force.
One JSON line per decision: host, path, verdict, reason. Never a value.
"""
import asyncio
import ipaddress
import urllib.parse
import os
import signal
import socket
import sys

import yaml
from mitmproxy import ctx, http

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import detectors  # noqa: E402

DAEMON = "pipelock"
TOP_KEYS = {"version", "mode", "enforce", "api_allowlist", "fetch_proxy", "forward_proxy", "tls_interception",
            "request_body_scanning", "dlp", "ssrf", "internal", "logging", "cross_request_detection"}
SENSITIVE = {"authorization", "cookie", "x-api-key", "x-token", "proxy-authorization", "x-goog-api-key"}


class Config:
    def __init__(self, path):
        with open(path) as f:
            docs = list(yaml.safe_load_all(f))
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise ValueError("expected exactly one YAML mapping")
        c = docs[0]
        unknown = sorted(set(c) - TOP_KEYS)
        if unknown:
            raise ValueError("unknown key %s" % unknown[0])
        self.mode = c.get("mode", "balanced")
        if self.mode not in ("strict", "balanced", "audit"):
            raise ValueError("mode: %r is not strict, balanced or audit" % self.mode)
        self.enforce = c.get("enforce", True) is not False and self.mode != "audit"
        self.allowlist = [str(h) for h in c.get("api_allowlist") or []]
        if self.mode == "strict" and not self.allowlist:
            raise ValueError("mode strict needs a non-empty api_allowlist")
        fp = c.get("forward_proxy") or {}
        self.sni_verification = fp.get("sni_verification", True) is not False
        tls = c.get("tls_interception") or {}
        self.intercept = bool(tls.get("enabled", False))
        self.passthrough = [str(h) for h in tls.get("passthrough_domains") or []]
        rb = c.get("request_body_scanning") or {}
        self.body_scan = rb.get("enabled", True) is not False
        self.header_scan = rb.get("scan_headers", True) is not False
        self.dlp_block = rb.get("action", "block") != "warn"
        self.max_body = int(rb.get("max_body_bytes", 5 * 1024 * 1024))
        self.header_mode = rb.get("header_mode", "all")
        if self.header_mode not in ("sensitive", "all"):
            raise ValueError("request_body_scanning.header_mode: %r" % self.header_mode)
        dlp = c.get("dlp") or {}
        self.detectors = detectors.Detectors(dlp.get("patterns"), dlp.get("include_defaults", True) is not False)
        cr = c.get("cross_request_detection") or {}
        fr = cr.get("fragment_reassembly") or {}
        self.fragments = None
        if cr.get("enabled") and fr.get("enabled"):
            self.fragments = detectors.Fragments(int(fr.get("max_buffer_bytes", 65536)),
                                                 float(fr.get("window_minutes", 5)))
        self.fragments_block = cr.get("action", "block") != "warn"
        ssrf = c.get("ssrf") or {}
        self.ip_allowlist = [ipaddress.ip_network(str(n), strict=False) for n in ssrf.get("ip_allowlist") or []]


def fragment_values(req):
    """(place, text) pairs of one request for fragment reassembly: each path
    segment by position, each query parameter and form field by name, each
    header by name, and the body's text (its two ends are what a join
    needs)."""
    out = []
    raw_path, _, query = req.path.partition("?")
    for i, seg in enumerate(raw_path.split("/")):
        if seg:
            out.append(("path:%d" % i, urllib.parse.unquote_plus(seg)))
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
        out.append(("query:" + k, v))
    for name, value in req.headers.items(multi=True):
        out.append(("header:" + name.lower(), value))
    body = req.raw_content or b""
    if body:
        try:
            text = (req.get_content(strict=False) or b"").decode("utf-8", "replace")
        except Exception:
            text = body.decode("utf-8", "replace")
        if "x-www-form-urlencoded" in (req.headers.get("content-type") or ""):
            for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True):
                out.append(("form:" + k, v))
        else:
            out.append(("body", text.strip()))
    return out


def block(status, text):
    return http.Response.make(status, text + "\n", {"Content-Type": "text/plain; charset=utf-8"})


class Filter:
    def __init__(self):
        self.conf = None
        self.targets = {}   # client connection id -> (host, port) of its CONNECT

    def load(self, loader):
        loader.add_option("cork_config", str, "/etc/cork/pipelock/pipelock.yaml", "pipelock.yaml")

    def configure(self, updated):
        if "cork_config" in updated and self.conf is None:
            try:
                self.conf = Config(ctx.options.cork_config)
            except Exception as e:  # a bad config at start is fatal
                common.log(DAEMON, event="config_error", path=ctx.options.cork_config, error=str(e))
                sys.exit(2)
            common.log(DAEMON, event="config", path=ctx.options.cork_config, hosts=len(self.conf.allowlist),
                       mode=self.conf.mode)

    def running(self):
        asyncio.get_event_loop().add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self):
        try:
            self.conf = Config(ctx.options.cork_config)
            common.log(DAEMON, event="reload", verdict="ok", hosts=len(self.conf.allowlist))
        except Exception as e:
            common.log(DAEMON, event="reload", verdict="kept_old", error=str(e))

    # -- decisions -----------------------------------------------------------
    def decide(self, flow, **fields):
        common.log(DAEMON, **fields)

    def refuse(self, flow, status, reason, connect=False, **fields):
        enforce = self.conf.enforce
        self.decide(flow, verdict="block" if enforce else "warn", reason=reason, **fields)
        if enforce:
            flow.response = block(status, ("CONNECT blocked: " if connect else "blocked: ") + reason)
        return enforce

    def host_checks(self, flow, host, url, connect):
        """Allowlist, then DLP on the URL and host (before any DNS)."""
        c = self.conf
        ip = common.normalize_ip(host)
        shown = ip or host
        if c.mode == "strict" and not common.host_allowed(host, c.allowlist):
            what = "IP literal not in allowlist" if ip else "domain not in allowlist"
            return self.refuse(flow, 403, "%s: %s" % (what, shown), connect, host=shown)
        hit = c.detectors.scan_url(url, host)
        if hit:
            return self.refuse(flow, 403, "DLP match: %s in URL" % hit, connect, host=shown, detector=hit)
        if ip is None:
            try:
                socket.getaddrinfo(host, None)
            except OSError:
                return self.refuse(flow, 403, "DNS lookup failed: %s" % host, connect, host=host)
        return False

    def http_connect(self, flow):
        host, port = flow.request.host, flow.request.port
        self.targets[flow.client_conn.id] = (host.lower(), port)
        if self.host_checks(flow, host, "%s:%d" % (host, port), True):
            return
        self.decide(flow, event="connect", host=host, port=port, verdict="allow")

    def client_disconnected(self, client):
        self.targets.pop(client.id, None)

    def tls_clienthello(self, data):
        # the CONNECT target (server.address may be the dialled IP by now)
        target = self.targets.get(data.context.client.id) or data.context.server.address
        if not target:
            return
        host = str(target[0]).lower()
        sni = data.client_hello.sni
        if sni and self.conf.sni_verification and sni.lower().rstrip(".") != host:
            # intercept, so that every request in it gets `authority mismatch`
            self.decide(None, event="tls", host=host, sni_mismatch=True, verdict="block",
                        reason="SNI does not match the CONNECT host")
            return
        if not self.conf.intercept or common.domain_match(host, self.conf.passthrough):
            data.ignore_connection = True
            self.decide(None, event="tls", host=host, verdict="splice")

    def next_layer(self, nextlayer):
        """An ssh session inside a CONNECT tunnel (git-gate's upstreams) is
        spliced as raw TCP: mitmproxy 8 would take its banner ("SSH-2.0-")
        for an HTTP verb and break it. Anything else that is not TLS stays
        HTTP, so it is scanned."""
        from mitmproxy.proxy import layers
        data = nextlayer.data_client()
        if nextlayer.layer is None and data.startswith(b"SSH-") and len(nextlayer.context.layers) > 1 \
                and self.targets.get(nextlayer.context.client.id):
            host = self.targets[nextlayer.context.client.id][0]
            nextlayer.layer = layers.TCPLayer(nextlayer.context)
            self.decide(None, event="tunnel", host=host, protocol="ssh", verdict="splice")

    def requestheaders(self, flow):
        c = self.conf
        req = flow.request
        tunnel = self.targets.get(flow.client_conn.id)
        host = req.host.lower()
        path = req.path.split("?", 1)[0]
        if tunnel:
            hh = req.host_header or ""
            try:
                from mitmproxy.net.http import url as murl
                h_host, h_port = murl.parse_authority(hh, check=True)
            except ValueError:
                h_host, h_port = None, None
            if (h_host or "").lower() != tunnel[0] or (h_port is not None and h_port != tunnel[1]) \
                    or req.port != tunnel[1]:
                self.refuse(flow, 403, "authority mismatch", host=tunnel[0], path=path)
                return
            host = tunnel[0]
        else:
            if req.scheme not in ("http", "https"):
                self.refuse(flow, 403, "scheme not allowed: %s" % req.scheme, host=host)
                return
            hh = req.host_header
            if hh is not None:
                from mitmproxy.net.http import url as murl
                try:
                    h_host, _ = murl.parse_authority(hh, check=True)
                except ValueError:
                    h_host = None
                if (h_host or "").lower() != host:
                    self.refuse(flow, 403, "authority mismatch", host=host, path=path)
                    return
            if self.host_checks(flow, host, req.pretty_url, False):
                return
        hit = tunnel and c.detectors.scan_url(req.url, host)
        if hit:
            self.refuse(flow, 403, "DLP match: %s in URL" % hit, host=host, path=path, detector=hit)
            return
        if c.header_scan:
            for name, value in req.headers.items(multi=True):
                if c.header_mode == "sensitive" and name.lower() not in SENSITIVE:
                    continue
                hit = c.detectors.scan_decoded(value, host)
                if hit:
                    self.refuse(flow, 403, "DLP match: %s in header %s" % (hit, name), host=host, path=path,
                                detector=hit, header=name)
                    return
        cl = req.headers.get("content-length")
        if c.body_scan and cl and cl.isdigit() and int(cl) > c.max_body:
            self.refuse(flow, 403, "request body too large to scan", host=host, path=path)

    def request(self, flow):
        if flow.response is not None:
            return
        c = self.conf
        req = flow.request
        host = (self.targets.get(flow.client_conn.id) or (req.host.lower(),))[0]
        path = req.path.split("?", 1)[0]
        body = req.raw_content or b""
        if c.body_scan and body:
            if len(body) > c.max_body:
                self.refuse(flow, 403, "request body too large to scan", host=host, path=path)
                return
            try:
                text = req.get_content(strict=False) or b""
            except Exception:
                text = body
            hit = c.detectors.scan_decoded(text, host)
            if hit:
                if c.dlp_block:
                    self.refuse(flow, 403, "DLP match: %s in body" % hit, host=host, path=path, detector=hit)
                    return
                self.decide(flow, host=host, path=path, verdict="warn", reason="DLP match: %s in body" % hit)
        frags = c.fragments
        if frags is not None:
            values = fragment_values(req)
            hit = frags.check(values, c.detectors, host)
            if hit:
                if not c.fragments_block:
                    self.decide(flow, host=host, path=path, verdict="warn", reason="DLP match: %s across requests" % hit)
                elif self.refuse(flow, 403, "DLP match: %s across requests" % hit, host=host, path=path,
                                 detector=hit, cross_request=True):
                    return
            frags.add(values)
        self.decide(flow, event="request", host=host, method=req.method, path=path, verdict="allow")

    async def server_connect(self, data):
        """Dial time: resolve again, refuse any internal answer, dial the
        validated address itself."""
        srv = data.server
        if not srv.address:
            return
        host, port = srv.address
        ip = common.normalize_ip(str(host))
        try:
            if ip is not None:
                addrs = [ip]
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
                addrs = [i[4][0] for i in infos]
        except OSError as e:
            srv.error = "blocked: DNS lookup failed: %s (%s)" % (host, e)
            self.decide(None, event="dial", host=host, verdict="block", reason="DNS lookup failed")
            return
        bad = [a for a in addrs if common.internal(a, self.conf.ip_allowlist)]
        if bad and self.conf.enforce:
            srv.error = "blocked: SSRF: %s resolves to internal address %s" % (host, bad[0])
            self.decide(None, event="dial", host=host, verdict="block",
                        reason="SSRF: internal address %s" % bad[0])
            return
        if ip is None:
            if srv.sni is None:
                srv.sni = host
            srv.address = (addrs[0], port)
        self.decide(None, event="dial", host=host, address=addrs[0], verdict="allow")


addons = [Filter()]
