"""cork bundle: egress (a mitmproxy 8.1 addon, upstream mode through the
filter). The agent's first hop when the bottle has routes.

For a route host (routes.yaml) it intercepts TLS with the bottle's egress
CA, lets through only the route's `paths` (prefixes; none declared: all),
removes whatever credential header the agent sent (Authorization, or the
route's own header) and puts in the route's credential, read from the
EGRESS_TOKEN_<n> variable the route names. Everything else is tunnelled to
the filter untouched: the filter decides. SIGHUP reloads routes.yaml; an
invalid new file leaves the old routes in force. One JSON line per
decision (host, path, route, verdict). Never a value.

A route's response must not hand the agent the credential: an upstream that
echoes request headers back (a TRACE, an /anything or /headers endpoint)
would. A response whose headers or body hold the injected value (raw,
base64 or percent-encoded) is replaced by a 502.
"""
import asyncio
import base64
import os
import signal
import sys
import urllib.parse

import yaml
from mitmproxy import ctx, http
from mitmproxy.net.http import url as murl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DAEMON = "egress"
KEYS = {"version", "listen", "upstream_proxy", "routes", "tls"}
ROUTE_KEYS = {"host", "auth", "token_env", "paths"}


def load_routes(path):
    with open(path) as f:
        c = yaml.safe_load(f) or {}
    if not isinstance(c, dict):
        raise ValueError("expected a YAML mapping")
    unknown = sorted(set(c) - KEYS)
    if unknown:
        raise ValueError("unknown key %s" % unknown[0])
    routes = []
    for i, r in enumerate(c.get("routes") or [], 1):
        if not isinstance(r, dict) or not isinstance(r.get("host"), str):
            raise ValueError("routes[%d]: needs a host" % i)
        bad = sorted(set(r) - ROUTE_KEYS)
        if bad:
            raise ValueError("routes[%d]: unknown key %s" % (i, bad[0]))
        auth = r.get("auth", "none")
        if auth not in ("none", "bearer", "token", "basic") and not str(auth).startswith("header:"):
            raise ValueError("routes[%d]: auth %r" % (i, auth))
        if auth != "none" and not isinstance(r.get("token_env"), str):
            raise ValueError("routes[%d]: auth %s needs token_env" % (i, auth))
        routes.append({"n": i, "host": r["host"].lower(), "auth": auth, "token_env": r.get("token_env"),
                       "paths": [str(p) for p in r.get("paths") or []]})
    return routes


def path_allowed(path, prefixes):
    if not prefixes:
        return True
    if "/../" in path + "/" or "/./" in path + "/" or "%2e" in path.lower() or "%2f" in path.lower():
        return False
    for p in prefixes:
        if path == p or path.startswith(p if p.endswith("/") else p + "/") or (p.endswith("*") and path.startswith(p[:-1])):
            return True
    return False


class Egress:
    def __init__(self):
        self.routes = None
        self.targets = {}

    def load(self, loader):
        loader.add_option("cork_routes", str, "/etc/cork/egress/routes.yaml", "routes.yaml")

    def configure(self, updated):
        if "cork_routes" in updated and self.routes is None:
            try:
                self.routes = load_routes(ctx.options.cork_routes)
            except Exception as e:
                common.log(DAEMON, event="config_error", path=ctx.options.cork_routes, error=str(e))
                sys.exit(2)
            common.log(DAEMON, event="config", routes=len(self.routes))

    def running(self):
        asyncio.get_event_loop().add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self):
        try:
            self.routes = load_routes(ctx.options.cork_routes)
            common.log(DAEMON, event="reload", verdict="ok", routes=len(self.routes))
        except Exception as e:
            common.log(DAEMON, event="reload", verdict="kept_old", error=str(e))

    def route(self, host):
        h = host.lower().rstrip(".")
        for r in self.routes:
            if r["host"] == h:
                return r
        return None

    async def http_connect(self, flow):
        host, port = flow.request.host.lower(), flow.request.port
        self.targets[flow.client_conn.id] = (host, port)
        if self.route(host) is not None:
            return
        # mitmproxy 8's upstream mode answers a CONNECT with 200 before it asks
        # the filter; ask the filter first, so that its refusal (403 and its
        # reason) reaches the agent instead of a handshake that fails
        up = ctx.options.mode.split(":", 1)[1] if ":" in ctx.options.mode else "http://127.0.0.1:8888"
        uhost, _, uport = up.split("://", 1)[-1].rstrip("/").rpartition(":")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(uhost, int(uport)), 10)
            try:
                writer.write(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port, host, port)).encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    n = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            n = int(line.split(b":", 1)[1])
                    body = await asyncio.wait_for(reader.readexactly(n), 10) if n else b""
                    common.log(DAEMON, host=host, port=port, verdict="refused_by_filter", status=status)
                    flow.response = http.Response.make(status, body, {"Content-Type": "text/plain; charset=utf-8"})
            finally:
                writer.close()
        except (OSError, ValueError, IndexError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            common.log(DAEMON, host=host, port=port, verdict="block", reason="filter unreachable: %s" % e)
            flow.response = http.Response.make(502, b"blocked: the filter did not answer\n")

    def client_disconnected(self, client):
        self.targets.pop(client.id, None)

    def tls_clienthello(self, data):
        target = data.context.server.address
        if not target:
            return
        host = str(target[0]).lower()
        if self.route(host) is None:
            data.ignore_connection = True   # not ours: a raw tunnel to the filter
            common.log(DAEMON, host=host, verdict="tunnel")

    def refuse(self, flow, reason, **fields):
        common.log(DAEMON, verdict="block", reason=reason, **fields)
        flow.response = http.Response.make(403, "blocked: %s\n" % reason, {"Content-Type": "text/plain; charset=utf-8"})

    def requestheaders(self, flow):
        req = flow.request
        tunnel = self.targets.get(flow.client_conn.id)
        host = tunnel[0] if tunnel else req.host.lower()
        path = req.path.split("?", 1)[0]
        r = self.route(host)
        if r is None:
            return   # plain HTTP to a host that is not a route: the filter decides
        hh = req.host_header or ""
        try:
            h_host, h_port = murl.parse_authority(hh, check=True)
        except ValueError:
            h_host, h_port = None, None
        port = tunnel[1] if tunnel else req.port
        if (h_host or "").lower() != host or (h_port is not None and h_port != port):
            self.refuse(flow, "authority mismatch", host=host, path=path, route=r["n"])
            return
        if not path_allowed(path, r["paths"]):
            self.refuse(flow, "path not allowed by route %d: %s" % (r["n"], path), host=host, path=path, route=r["n"])
            return
        header = "Authorization"
        if r["auth"].startswith("header:"):
            header = r["auth"][len("header:"):]
        for h in {"Authorization", header, "Proxy-Authorization"}:
            if h in req.headers:
                del req.headers[h]
        if r["auth"] != "none":
            value = os.environ.get(r["token_env"])
            if value is None:
                self.refuse(flow, "route %d: its credential %s is not set" % (r["n"], r["token_env"]),
                            host=host, path=path, route=r["n"])
                return
            if r["auth"] == "bearer":
                req.headers[header] = "Bearer " + value
            elif r["auth"] == "token":
                req.headers[header] = "token " + value
            elif r["auth"] == "basic":
                if ":" in value:
                    value = base64.b64encode(value.encode()).decode()
                req.headers[header] = "Basic " + value
            else:
                req.headers[header] = value
            flow.metadata["cork_forms"] = secret_forms(os.environ.get(r["token_env"]))
        common.log(DAEMON, host=host, path=path, route=r["n"], verdict="allow",
                   injected=r["token_env"] if r["auth"] != "none" else None)


    def response(self, flow):
        forms = flow.metadata.get("cork_forms")
        resp = flow.response
        if not forms or resp is None:
            return
        texts = [v for _, v in resp.headers.items(multi=True)]
        try:
            body = resp.get_content(strict=False) or b""
        except Exception:
            body = resp.raw_content or b""
        texts.append(body.decode("utf-8", "replace"))
        if any(f in t for t in texts for f in forms):
            tunnel = self.targets.get(flow.client_conn.id)
            host = tunnel[0] if tunnel else flow.request.host.lower()
            common.log(DAEMON, host=host, path=flow.request.path.split("?", 1)[0], verdict="block",
                       reason="the upstream echoed the route's credential")
            flow.response = http.Response.make(502, b"blocked: the upstream echoed the route's credential\n",
                                               {"Content-Type": "text/plain; charset=utf-8"})


def secret_forms(value):
    """The forms of a credential an echo would carry: raw, base64 (standard
    and URL-safe, unpadded) and percent-encoded."""
    if not value:
        return []
    forms = {value, urllib.parse.quote(value, safe="")}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(enc(value.encode()).decode().rstrip("="))
    return sorted(f for f in forms if len(f) >= 8)


addons = [Egress()]
