#!/usr/bin/python3
"""cork bundle: git-gate's push scanner (cork-scan). The pre-receive hook
runs it with the pushed tips before any upstream contact:

    cork-scan NEW_SHA...

It scans only the new commits (those no ref reaches yet: `--not --all`),
their messages and the lines they add, with the filter's detectors (one
shared set). A hit: a message naming the detector, the commit and the file,
never the matched text, on stderr, and exit 1. Clean: exit 0.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import detectors  # noqa: E402


def git(*args):
    return subprocess.run(["git"] + list(args), check=True, stdout=subprocess.PIPE).stdout


def main(tips):
    if not tips:
        return 0
    commits = git("rev-list", *tips, "--not", "--all").decode().split()
    for c in commits:
        out = git("show", "--no-color", "--no-ext-diff", "--format=%B%x00", "--unified=0", "--text", c)
        msg, _, diff = out.partition(b"\0")
        hit = detectors.DEFAULT.scan(msg)
        if hit:
            print("git-gate: push rejected: %s in the message of commit %s" % (hit, c[:12]), file=sys.stderr)
            return 1
        path = None
        for line in diff.split(b"\n"):
            if line.startswith(b"+++ "):
                path = line[4:].decode("utf-8", "replace")
                if path.startswith("b/"):
                    path = path[2:]
            elif line.startswith(b"+"):
                hit = detectors.DEFAULT.scan(line[1:])
                if hit:
                    print("git-gate: push rejected: %s in %s (commit %s)" % (hit, path, c[:12]), file=sys.stderr)
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
