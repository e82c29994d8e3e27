"""cork bundle: the one detector set (DLP) shared by the filter and git-gate's
push scanner. The shapes are pipelock's built-in defaults (each pattern
case-insensitive), which name the common credential shapes: AWS keys,
GitHub/GitLab/Slack tokens, private-key blocks, Anthropic and OpenAI keys,
JWTs. Never log a match: only the detector's name.

Encoded secrets: scan_decoded also scans what the base64 (standard and
URL-safe) and hex runs of a text decode to. Split secrets: Fragments is
pipelock's cross_request_detection.fragment_reassembly for the filter.
"""
import base64
import binascii
import collections
import re
import time
import urllib.parse

DEFAULTS = [
    ("aws_access_key", r"(?:AKIA|A3T[A-Z0-9]|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16,}"),
    ("aws_secret_key", r"aws.{0,20}(?:secret|private).{0,20}[\"'=:\s][A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
    ("github_token", r"gh[pousr]_[A-Za-z0-9_]{36,}"),
    ("github_pat", r"github_pat_[A-Za-z0-9_]{36,}"),
    ("gitlab_pat", r"glpat-[A-Za-z0-9\-_]{20,}"),
    ("slack_token", r"xox[bpras]-[0-9A-Za-z-]{15,}"),
    ("private_key", r"-----BEGIN\s+(?:RSA\s+|EC\s+|DSA\s+|OPENSSH\s+)?PRIVATE\s+KEY-----"),
    ("anthropic_key", r"sk-ant-[A-Za-z0-9\-_]{10,}"),
    ("openai_key", r"sk-(?:proj|svcacct)-[A-Za-z0-9\-_]{10,}"),
    ("jwt", r"(?:ey[A-Za-z0-9_\-=]{10,}\.){2}[A-Za-z0-9_\-=]{10,}"),
]

# The core set pipelock never turns off (include_defaults: false keeps these).
CORE = {"aws_access_key", "aws_secret_key", "github_token", "github_pat", "gitlab_pat",
        "slack_token", "private_key"}


class Detectors:
    """A compiled set: [(name, regex, exempt_domains)]."""

    def __init__(self, extra=None, include_defaults=True):
        self.rules = []
        for name, rx in DEFAULTS:
            if include_defaults or name in CORE:
                self.rules.append((name, re.compile(rx, re.IGNORECASE), ()))
        for p in extra or []:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("regex"), str):
                raise ValueError("dlp.patterns: each needs a name and a regex")
            exempt = tuple(h.lower() for h in p.get("exempt_domains") or ())
            self.rules.append((p["name"], re.compile(p["regex"], re.IGNORECASE), exempt))

    def scan(self, text, host=None):
        """The name of the first detector that matches text, else None."""
        if not text:
            return None
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        h = (host or "").lower()
        for name, rx, exempt in self.rules:
            if exempt and any(h == e or (e.startswith("*.") and (h == e[2:] or h.endswith(e[1:]))) for e in exempt):
                continue
            if rx.search(text):
                return name
        return None

    def scan_url(self, url, host=None):
        """URLs are scanned raw and percent-decoded (twice: %25xx hides a %xx),
        each with its base64 and hex runs decoded."""
        seen = url
        for _ in range(3):
            hit = self.scan_decoded(seen, host)
            if hit:
                return hit
            nxt = urllib.parse.unquote_plus(seen)
            if nxt == seen:
                break
            seen = nxt
        return None


    def scan_decoded(self, text, host=None):
        """scan, then the same over what each base64 or hex run of text
        decodes to (one level): "NAME (base64)" / "NAME (hex)"."""
        hit = self.scan(text, host)
        if hit or not text:
            return hit
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for form, raw in decodings(text):
            hit = self.scan(raw, host)
            if hit:
                return "%s (%s)" % (hit, form)
        return None


B64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}")
HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){12,}")


def decodings(text):
    """(form, bytes) for each base64 run of 16+ characters (at each of the
    four alignments: a run may start inside someone else's prefix) and each
    hex run of 24+ digits in text."""
    for m in B64_RUN.finditer(text):
        run = m.group(0).replace("-", "+").replace("_", "/")
        for off in range(4):
            part = run[off:]
            if len(part) % 4 == 1:
                part = part[:-1]          # a lone sextet: no byte in it
            part += "=" * (-len(part) % 4)
            if len(part) < 12:
                break
            try:
                yield "base64", base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                pass
    for m in HEX_RUN.finditer(text):
        yield "hex", bytes.fromhex(m.group(0))


class Fragments:
    """Secrets split across requests (pipelock's cross_request_detection.
    fragment_reassembly). The filter records each forwarded request's values
    by place: a query parameter, a path position, a header, a form field or
    the body's two ends. A new value is joined with the values recently
    forwarded in the same place (both orders) and the join is scanned: two
    halves of a key sent one after the other in the same place match as the
    whole key did. Bounded by max_buffer_bytes and window_minutes; one buffer
    per filter (a bundle serves one bottle, whichever port the agent uses)."""

    PER_PLACE = 16
    EDGE = 160

    def __init__(self, max_bytes=65536, window_minutes=5, clock=time.monotonic):
        self.max_bytes = max_bytes
        self.window = window_minutes * 60
        self.clock = clock
        self.places = collections.OrderedDict()   # place -> deque of (time, value)
        self.size = 0

    def _prune(self):
        now = self.clock()
        for place in list(self.places):
            q = self.places[place]
            while q and (now - q[0][0] > self.window or self.size > self.max_bytes):
                self.size -= len(q.popleft()[1])
            if not q:
                del self.places[place]

    def check(self, values, detectors, host=None):
        """The detector a join of one of values ((place, text) pairs) with a
        recent value of the same place matches, else None."""
        self._prune()
        for place, v in values:
            head, tail = v[:self.EDGE], v[-self.EDGE:]
            for _, old in self.places.get(place, ()):
                for joined in (old[-self.EDGE:] + head, tail + old[:self.EDGE]):
                    hit = detectors.scan(joined, host)
                    if hit:
                        return hit
        return None

    def add(self, values):
        now = self.clock()
        for place, v in values:
            if not v:
                continue
            v = v[:self.EDGE] + v[-self.EDGE:] if len(v) > 2 * self.EDGE else v
            q = self.places.setdefault(place, collections.deque())
            q.append((now, v))
            self.size += len(v)
            if len(q) > self.PER_PLACE:
                self.size -= len(q.popleft()[1])
            self.places.move_to_end(place)
        self._prune()


DEFAULT = Detectors()
