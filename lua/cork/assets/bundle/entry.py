#!/usr/bin/python3
"""cork bundle entrypoint: starts the daemons CORK_DAEMONS names, each as a
user of its own and with only the environment it needs (docs/bundle.md):

  pipelock   the filter (filter.py under mitmdump; or the operator's own
             /usr/local/bin/pipelock when the image was built with one)
  egress     egress.py under mitmdump, upstream mode through the filter;
             the only one that gets EGRESS_TOKEN_*
  git-gate   cork's git-gate entrypoint.sh (git daemon, pushes scanned)
  supervise  supervise.py (MCP over HTTP)

Files only root can read (the CA keys, ssh identities: 0600, owned by the
operator's uid) are read here, with the owner's uid when root may not
(no CAP_DAC_OVERRIDE), and copied into each daemon's own 0700 directory.
SIGHUP is passed to the daemons that reload (the filter and egress); SIGTERM
to all. When one daemon exits, the others are stopped and the bundle exits
non-zero. An unknown daemon name: exit 2.
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

LIB = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, LIB)
import common  # noqa: E402

KNOWN = ["pipelock", "egress", "git-gate", "supervise"]
USERS = {"pipelock": "cork-pipelock", "egress": "cork-egress", "git-gate": "cork-git", "supervise": "cork-supervise"}
RUN = "/run/cork"
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"
EXTRA_CA = "/etc/cork/bundle/extra-ca.pem"
PL_CONF = "/etc/cork/pipelock/pipelock.yaml"
PL_CA, PL_KEY = "/etc/cork/pipelock/ca/ca.pem", "/etc/cork/pipelock/ca/ca-key.pem"
EG_CONF = "/etc/cork/egress/routes.yaml"
EG_CA, EG_KEY = "/etc/cork/egress/ca/ca.pem", "/etc/cork/egress/ca/ca-key.pem"
GG_CONF = "/etc/cork/git-gate"
SV_QUEUE = "/var/lib/cork/supervise/queue"
PIPELOCK_BIN = "/usr/local/bin/pipelock"
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def say(**f):
    common.log("bundle", **f)


def read_owned(path):
    """A file's bytes, read as its owner when root alone may not."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except PermissionError:
        st = os.stat(path)
        os.setegid(st.st_gid)
        os.seteuid(st.st_uid)
        try:
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.seteuid(0)
            os.setegid(0)


def home_of(daemon):
    """The daemon's own directory, root's while it is filled (root has no
    CAP_DAC_OVERRIDE here), handed to the daemon's user by give()."""
    pw = pwd.getpwnam(USERS[daemon])
    d = os.path.join(RUN, daemon)
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d, pw


def give(home, uid, gid):
    """Everything under home to the daemon's user, home itself last."""
    for root, dirs, files in os.walk(home, topdown=False):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)
    os.chown(home, uid, gid)


def put(path, data, pw, mode=0o600):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def trust(extra=()):
    data = read_owned(SYSTEM_CAS) if os.path.exists(SYSTEM_CAS) else b""
    for p in (EXTRA_CA,) + tuple(extra):
        if os.path.exists(p):
            data += b"\n" + read_owned(p)
    return data


def mitm_conf(daemon, ca, key, pw, home, extra_trust=()):
    conf = os.path.join(home, "conf")
    os.makedirs(conf, mode=0o700, exist_ok=True)
    if os.path.exists(ca) and os.path.exists(key):
        put(os.path.join(conf, "mitmproxy-ca.pem"), read_owned(key) + b"\n" + read_owned(ca), pw)
    put(os.path.join(home, "upstream-ca.pem"), trust(extra_trust), pw, 0o644)
    return conf


def mitmdump(port, conf, home, script, opts, mode=None):
    argv = ["mitmdump", "--listen-host", "0.0.0.0", "--listen-port", str(port), "--set", "confdir=" + conf,
            "-s", os.path.join(LIB, script), "--set", "ssl_verify_upstream_trusted_ca=" + home + "/upstream-ca.pem",
            "--set", "flow_detail=0", "--set", "termlog_verbosity=warn", "--set", "connection_strategy=eager"]
    if mode:
        argv += ["--mode", mode]
    for k, v in opts.items():
        argv += ["--set", "%s=%s" % (k, v)]
    return argv


def plan_pipelock():
    home, pw = home_of("pipelock")
    env = dict(BASE_ENV, HOME=home)
    if os.access(PIPELOCK_BIN, os.X_OK):
        return [PIPELOCK_BIN, "run", "--config", PL_CONF], env, pw, home
    conf = mitm_conf("pipelock", PL_CA, PL_KEY, pw, home)
    return mitmdump(8888, conf, home, "filter.py", {"cork_config": PL_CONF}), env, pw, home


def plan_egress():
    home, pw = home_of("egress")
    env = dict(BASE_ENV, HOME=home)
    for k, v in os.environ.items():
        if k.startswith("EGRESS_TOKEN_"):
            env[k] = v
    upstream = "http://127.0.0.1:8888"
    try:
        import yaml
        with open(EG_CONF) as f:
            upstream = (yaml.safe_load(f) or {}).get("upstream_proxy") or upstream
    except OSError:
        pass
    # route hosts the filter intercepts come back signed by the filter's CA
    conf = mitm_conf("egress", EG_CA, EG_KEY, pw, home, extra_trust=(PL_CA,))
    return mitmdump(9099, conf, home, "egress.py", {"cork_routes": EG_CONF}, mode="upstream:" + upstream), env, pw, home


def plan_gitgate():
    home, pw = home_of("git-gate")
    conf = os.path.join(home, "conf")
    if os.path.exists(conf):
        shutil.rmtree(conf)
    shutil.copytree(GG_CONF, conf, symlinks=False, copy_function=lambda s, d: open(d, "wb").write(read_owned(s)))
    for root, dirs, files in os.walk(conf):
        for n in dirs + files:
            p = os.path.join(root, n)
            os.chmod(p, 0o700 if os.path.isdir(p) or n in ("entrypoint.sh", "pre-receive", "access") else 0o600)
    os.chmod(conf, 0o700)
    up = os.path.join(conf, "upstreams")
    if os.path.exists(up):
        text = open(up).read().replace(GG_CONF + "/", conf + "/")
        put(up, text.encode(), pw)
    mirrors = "/var/lib/cork/git-gate"
    os.makedirs(mirrors, exist_ok=True)
    os.chown(mirrors, pw.pw_uid, pw.pw_gid)
    env = dict(BASE_ENV, HOME=home, GIT_GATE_CONF=conf, GIT_GATE_ROOT=mirrors)
    if os.environ.get("GIT_GATE_PROXY"):
        env["GIT_GATE_PROXY"] = os.environ["GIT_GATE_PROXY"]
    return ["sh", os.path.join(conf, "entrypoint.sh")], env, pw, home


def plan_supervise():
    home, pw = home_of("supervise")
    os.makedirs(SV_QUEUE, exist_ok=True)
    st = os.stat(SV_QUEUE)
    if st.st_uid != 0:
        # the operator's uid owns the queue: run as that uid, so both sides write it
        pw = pwd.struct_passwd((pw.pw_name, "x", st.st_uid, st.st_gid, "", home, "/bin/sh"))
    else:
        os.chown(SV_QUEUE, pw.pw_uid, pw.pw_gid)
    env = dict(BASE_ENV, HOME=home, SUPERVISE_QUEUE=SV_QUEUE)
    return [sys.executable, os.path.join(LIB, "supervise.py")], env, pw, home


def wait_port(port, proc, secs=120):
    """Until something accepts on 127.0.0.1:port (or proc died)."""
    import socket
    deadline = time.time() + secs
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


PLANS = {"pipelock": plan_pipelock, "egress": plan_egress, "git-gate": plan_gitgate, "supervise": plan_supervise}


def main():
    wanted = [d for d in os.environ.get("CORK_DAEMONS", "").split(",") if d]
    for d in wanted:
        if d not in KNOWN:
            say(event="unknown_daemon", name=d, known=KNOWN)
            print("cork bundle: unknown daemon %s (this image knows %s)" % (d, ", ".join(KNOWN)), file=sys.stderr)
            return 2
    if not wanted:
        print("cork bundle: CORK_DAEMONS is empty", file=sys.stderr)
        return 2
    os.makedirs(RUN, mode=0o755, exist_ok=True)
    procs = {}
    stopping = []

    uids = {}

    def signal_as(d, sig):
        """Signal a daemon with its own uid: root here has no CAP_KILL."""
        p = procs.get(d)
        if not p or p.poll() is not None:
            return
        os.seteuid(uids[d])
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        finally:
            os.seteuid(0)

    def forward(sig, names):
        for n in names:
            signal_as(n, sig)

    signal.signal(signal.SIGHUP, lambda s, f: (say(event="sighup"), forward(signal.SIGHUP, ["pipelock", "egress"])))
    signal.signal(signal.SIGTERM, lambda s, f: (stopping.append(1), forward(signal.SIGTERM, list(procs))))
    signal.signal(signal.SIGINT, lambda s, f: (stopping.append(1), forward(signal.SIGTERM, list(procs))))
    for d in wanted:
        if d == "git-gate" and "pipelock" in procs:
            # git-gate's first fetch goes through the filter's CONNECT
            wait_port(8888, procs["pipelock"])
        argv, env, pw, home = PLANS[d]()
        give(home, pw.pw_uid, pw.pw_gid)
        uids[d] = pw.pw_uid
        procs[d] = subprocess.Popen(argv, env=env, cwd="/", user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                                    stdin=subprocess.DEVNULL)
        say(event="started", name=d, pid=procs[d].pid, uid=pw.pw_uid, env_names=sorted(env))
    say(event="ready", daemons=wanted)
    code = 0
    while True:
        for d, p in procs.items():
            if p.poll() is not None:
                if not stopping:
                    say(event="exited", name=d, status=p.returncode)
                    code = 1
                stopping.append(1)
        if stopping:
            forward(signal.SIGTERM, list(procs))
            deadline = time.time() + 5
            for n, p in procs.items():
                try:
                    p.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    signal_as(n, signal.SIGKILL)
            return code
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
