"""cork bundle: the one detector set (DLP) shared by the filter and git-gate's
push scanner. The shapes are pipelock's built-in defaults (each pattern
case-insensitive), which name the common credential shapes: AWS keys,
GitHub/GitLab/Slack tokens, private-key blocks, Anthropic and OpenAI keys,
JWTs. Never log a match: only the detector's name.
"""
import re
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
        """URLs are scanned raw and percent-decoded (twice: %25xx hides a %xx)."""
        seen = url
        for _ in range(3):
            hit = self.scan(seen, host)
            if hit:
                return hit
            nxt = urllib.parse.unquote_plus(seen)
            if nxt == seen:
                break
            seen = nxt
        return None


DEFAULT = Detectors()
