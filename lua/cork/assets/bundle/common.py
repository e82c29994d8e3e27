"""cork bundle: what the daemons share: JSON log lines, host and IP rules."""
import ipaddress
import json
import socket
import sys
import time


def log(daemon, **fields):
    """One JSON line on stdout. Callers pass names, hosts, paths, verdicts:
    never a header value, a body or a token."""
    rec = {"ts": round(time.time(), 3), "daemon": daemon}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec, sort_keys=True) + "\n")
    sys.stdout.flush()


def normalize_ip(host):
    """The canonical text of an IP literal (hex, octal and integer IPv4
    forms included: 0x7f.1, 2130706433), else None for a name."""
    h = host.strip("[]")
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        pass
    if h and all(c in "0123456789abcdefxABCDEFX." for c in h) and any(c.isdigit() for c in h):
        try:
            return socket.inet_ntoa(socket.inet_aton(h))
        except OSError:
            return None
    return None


def host_allowed(host, allowlist):
    """pipelock's api_allowlist rule: `*.x` matches the subdomains and x
    itself, case-insensitively; an IP literal matches only exactly."""
    h = host.lower().rstrip(".")
    ip = normalize_ip(h)
    for entry in allowlist or ():
        e = str(entry).lower().rstrip(".")
        if ip is not None:
            if normalize_ip(e) == ip:
                return True
            continue
        if e.startswith("*."):
            if h == e[2:] or h.endswith(e[1:]):
                return True
        elif h == e:
            return True
    return False


def domain_match(host, patterns):
    """passthrough_domains: `*.x` matches the subdomains only (pipelock's
    code, unlike its docs), a plain name only itself."""
    h = host.lower().rstrip(".")
    for p in patterns or ():
        p = str(p).lower().rstrip(".")
        if p.startswith("*."):
            if h.endswith(p[1:]):
                return True
        elif h == p:
            return True
    return False


INTERNAL = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "224.0.0.0/4", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8")]


def internal(ip, ip_allowlist):
    """True when ip is an internal address that ssrf.ip_allowlist does not
    let through."""
    a = ipaddress.ip_address(ip)
    if getattr(a, "ipv4_mapped", None):
        a = a.ipv4_mapped
    for n in ip_allowlist:
        if a.version == n.version and a in n:
            return False
    return any(a.version == n.version and a in n for n in INTERNAL)
