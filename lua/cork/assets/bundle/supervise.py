"""cork bundle: supervise, the MCP server the agent asks for new access
(JSON-RPC 2.0 over HTTP POST at /, MCP 2025-06-18: initialize, tools/list,
tools/call; a notification gets 202; GET gets 405).

Tools:
  request_egress_route {host, paths?, justification}   a new egress route
  request_allowlist_host {host, justification}         a new allowlist host
A request is written to the queue (/var/lib/cork/supervise/queue, shared
with the host) as ID.json and waits there until a human decides on the
host (`cork supervise approve|deny ID`), which writes ID.decision.json,
rewrites the live config and signals the daemons. The agent gets
{"status", "note", "id"} ("pending" when nobody decided within the wait).
"""
import json
import os
import re
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DAEMON = "supervise"
QUEUE = os.environ.get("SUPERVISE_QUEUE", "/var/lib/cork/supervise/queue")
PORT = int(os.environ.get("SUPERVISE_PORT", "9100"))
WAIT = float(os.environ.get("SUPERVISE_WAIT", "300"))
PROTOCOL = "2025-06-18"
HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")

TOOLS = [
    {"name": "request_egress_route",
     "description": "Ask the human operator for a new egress route: HTTPS to HOST (optionally only under PATHS) "
                    "through the bottle's egress. Waits for the decision.",
     "inputSchema": {"type": "object", "required": ["host", "justification"], "properties": {
         "host": {"type": "string", "description": "host name, e.g. api.example.com"},
         "paths": {"type": "array", "items": {"type": "string"}, "description": "path prefixes, each starting with /"},
         "justification": {"type": "string", "description": "why the task needs it"}}}},
    {"name": "request_allowlist_host",
     "description": "Ask the human operator to add HOST to the bottle's allowlist. Waits for the decision.",
     "inputSchema": {"type": "object", "required": ["host", "justification"], "properties": {
         "host": {"type": "string"}, "justification": {"type": "string"}}}},
]


class BadParams(Exception):
    pass


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def ask(kind, args):
    host = args.get("host")
    just = args.get("justification")
    if not isinstance(host, str) or not HOST_RE.match(host.lower()) or len(host) > 253:
        raise BadParams("host: a DNS name is needed")
    if not isinstance(just, str) or not just.strip():
        raise BadParams("justification: say why the task needs it")
    paths = args.get("paths") or []
    if kind == "route":
        if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
            raise BadParams("paths: a list of path prefixes starting with /")
    rid = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    req = {"id": rid, "kind": kind, "host": host.lower(), "justification": just[:2000], "created": time.time()}
    if kind == "route" and paths:
        req["paths"] = paths
    write_atomic(os.path.join(QUEUE, rid + ".json"), json.dumps(req, sort_keys=True) + "\n")
    common.log(DAEMON, event="request", id=rid, kind=kind, host=req["host"])
    decision = os.path.join(QUEUE, rid + ".decision.json")
    deadline = time.time() + WAIT
    while time.time() < deadline:
        if os.path.exists(decision):
            with open(decision) as f:
                d = json.load(f)
            common.log(DAEMON, event="decision", id=rid, status=d.get("status"))
            return {"id": rid, "status": d.get("status"), "note": d.get("note") or ""}
        time.sleep(0.25)
    return {"id": rid, "status": "pending", "note": "no decision yet; ask the operator to run cork supervise"}


def handle(msg):
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
    mid, method, params = msg.get("id"), msg["method"], msg.get("params") or {}
    if "id" not in msg:
        return None   # a notification
    def ok(result):
        return {"jsonrpc": "2.0", "id": mid, "result": result}
    def err(code, text):
        return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": text}}
    if method == "initialize":
        return ok({"protocolVersion": PROTOCOL, "capabilities": {"tools": {"listChanged": False}},
                   "serverInfo": {"name": "cork-supervise", "version": "1"}})
    if method == "ping":
        return ok({})
    if method == "tools/list":
        return ok({"tools": TOOLS})
    if method == "tools/call":
        name = params.get("name")
        kind = {"request_egress_route": "route", "request_allowlist_host": "allowlist"}.get(name)
        if kind is None:
            return err(-32602, "Unknown tool: %s" % name)
        try:
            result = ask(kind, params.get("arguments") or {})
        except BadParams as e:
            return ok({"content": [{"type": "text", "text": str(e)}], "isError": True})
        return ok({"content": [{"type": "text", "text": json.dumps(result)}], "structuredContent": result})
    return err(-32601, "Method not found: %s" % method)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body=None, ctype="application/json"):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(405, {"error": "POST JSON-RPC messages to /"})

    def do_POST(self):
        origin = self.headers.get("Origin")
        if origin and not re.match(r"^https?://(localhost|127\.[0-9.]+|\[::1\])(:\d+)?$", origin):
            return self.reply(403, {"error": "origin not allowed"})
        n = int(self.headers.get("Content-Length") or 0)
        try:
            msg = json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            return self.reply(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
        out = handle(msg)
        if out is None:
            return self.reply(202)
        self.reply(200, out)

    def log_message(self, *a):
        pass


def main():
    os.makedirs(QUEUE, exist_ok=True)
    srv = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    srv.daemon_threads = True
    common.log(DAEMON, event="listening", port=PORT)
    srv.serve_forever()


if __name__ == "__main__":
    main()
