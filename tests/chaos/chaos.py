#!/usr/bin/env python3
"""The chaos suite's driver (docs/CHAOS.md): a workload and a nemesis run
together against a 3-manager + 3-worker cluster for a number of rounds; after
each round the faults stop, everything heals, and the checks run. Python 3
standard library only. tests/chaos/run.sh sets up the hosts and calls:

  chaos.py spec NAME REPLICAS GEN        a service spec (JSON) as the workload writes them
  chaos.py start --config C NAME...      start daemons (each in its host's namespace)
  chaos.py run --config C --seed N ...   the rounds, the checks, the final teardown (TAP)

Every daemon incarnation runs under a small bash "recorder" that writes the
daemon's pid to DIR/NAME/pid.K (and DIR/NAME/pid) and its exit status to
DIR/NAME/exit.K, so whoever started it, the exit status of every incarnation
is known: kill -9 gives 137, SIGTERM must give 0, anything else is a crash.
"""

import argparse
import glob
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

IMAGE = "shoal-demo:latest"
# PID 1 of the container ends on SIGTERM (a shell ignores signals it has no
# handler for as PID 1, and each stop would take the whole grace period).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000000 & wait"]
NS = 1000000000
ABSENT = "absent"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def make_spec(name, replicas, gen):
    """The spec a create writes: op @gen shows in the label and the env."""
    return {
        "Name": name,
        "Labels": {"chaos.op": str(gen)},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Command": COMMAND,
                "Env": ["GEN=%d" % gen],
                "StopGracePeriod": 2 * NS,
            },
            "RestartPolicy": {"Condition": "any", "Delay": NS // 2},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {
            "Parallelism": 2,
            "Delay": 0,
            "FailureAction": "continue",
            "Monitor": NS // 2,
            "Order": "stop-first",
        },
    }


def fingerprint(spec):
    """What identifies the spec an op wrote: its op label, env, replicas,
    image and command. Two ops never write the same fingerprint."""
    cs = spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    return json.dumps(
        [
            spec.get("Labels", {}).get("chaos.op"),
            cs.get("Env", []),
            spec.get("Mode", {}).get("Replicated", {}).get("Replicas"),
            cs.get("Image"),
            cs.get("Command", []),
        ]
    )


# --- HTTP over the daemons' unix sockets ---------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Reply:
    """One API call's outcome. sent is False when the request never left
    (connect failed): the call then had no effect."""

    def __init__(self, status=None, body=None, err=None, sent=True):
        self.status = status
        self.body = body
        self.err = err
        self.sent = sent

    def outcome(self):
        """ack (2xx), fail (4xx, or never sent: nothing applied) or
        unknown (5xx, timeout, reset: may or may not be applied)."""
        if self.status is not None and 200 <= self.status < 300:
            return "ack"
        if not self.sent or (self.status is not None and 400 <= self.status < 500):
            return "fail"
        return "unknown"

    def text(self):
        if self.status is None:
            return "%s (%s)" % (self.err, "not sent" if not self.sent else "no answer")
        msg = self.body
        if isinstance(msg, dict) and "message" in msg:
            msg = msg["message"]
        return "%d %s" % (self.status, str(msg)[:200])


def call(sock, method, path, body=None, timeout=10.0):
    conn = UnixHTTPConnection(sock, timeout)
    try:
        try:
            conn.connect()
        except OSError as e:
            return Reply(err="connect: %s" % e, sent=False)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as e:
            return Reply(err="%s: %s" % (type(e).__name__, e))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(r.status, parsed)
    finally:
        conn.close()


# --- daemons ----------------------------------------------------------------------


class Daemon:
    def __init__(self, cfg, host):
        self.name = host["name"]
        self.i = host["i"]
        self.ns = host["ns"]
        self.ip = host["ip"]
        self.role = host["role"]
        self.dir = os.path.join(cfg["dir"], self.name)
        self.sock = os.path.join(self.dir, "shoal.sock")
        self.log = os.path.join(self.dir, "daemon.log")
        self.runc_root = os.path.join(self.dir, "state", "containers", ".runc")
        self.argv = [
            cfg["bin"], "daemon", "--state-dir", os.path.join(self.dir, "state"),
            "-H", "unix://" + self.sock, "--log-level", "debug",
            "--listen-addr", "%s:%d" % (self.ip, cfg["port"]),
            "--advertise-addr", self.ip, "--hostname", "chaos-h%d" % self.i,
        ]  # fmt: skip
        self.lock = threading.RLock()
        self.node_id = None
        self.inc = 0  # the current incarnation
        self.pid = None
        self.expected = {}  # incarnation -> "kill9" | "term": deaths we caused
        self.procs = []
        self.stopped = False  # SIGSTOPped now
        self.reported = set()  # incarnations whose unexpected death was recorded
        k = 1
        while os.path.exists(self._file("pid", k)):
            self.inc, k = k, k + 1
        if self.inc:
            with open(self._file("pid", self.inc)) as f:
                self.pid = int(f.read())

    def _file(self, what, k):
        return os.path.join(self.dir, "%s.%d" % (what, k))

    def log_span(self, k):
        """Where incarnation @k's lines are in the log: (start, end or None)."""
        span = []
        for j in (k, k + 1):
            try:
                with open(self._file("logpos", j)) as f:
                    span.append(int(f.read()))
            except (OSError, ValueError):
                span.append(0 if j == k else None)
        return tuple(span)

    def exit_status(self, k=None):
        try:
            with open(self._file("exit", k or self.inc)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def alive(self):
        return self.inc > 0 and self.exit_status() is None

    def start(self, wait=60.0):
        """Start a new incarnation; wait until its API answers. Returns an
        error text or None."""
        with self.lock:
            os.makedirs(self.dir, exist_ok=True)
            k = self.inc + 1
            pid_k, exit_k = self._file("pid", k), self._file("exit", k)
            with open(self._file("logpos", k), "w") as f:
                f.write("%d\n" % (os.path.getsize(self.log) if os.path.exists(self.log) else 0))
            script = (
                'nsenter --net="/var/run/netns/$0" "$@" >>"%s" 2>&1 & p=$!\n'
                'echo $p >"%s.tmp" && mv "%s.tmp" "%s" && cp "%s" "%s"\n'
                'wait $p; echo $? >"%s.tmp" && mv "%s.tmp" "%s"\n'
            ) % (self.log, pid_k, pid_k, pid_k, pid_k, os.path.join(self.dir, "pid"),
                 exit_k, exit_k, exit_k)  # fmt: skip
            p = subprocess.Popen(
                ["bash", "-c", script, self.ns] + self.argv,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            self.procs.append(p)
            deadline = time.monotonic() + 10
            while not os.path.exists(pid_k):
                if time.monotonic() > deadline:
                    return "%s: the recorder wrote no pid" % self.name
                time.sleep(0.02)
            with open(pid_k) as f:
                self.pid = int(f.read())
            self.inc = k
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.exit_status() is not None:
                return "%s exited with status %s while starting" % (self.name, self.exit_status())
            if call(self.sock, "GET", "/_ping", timeout=2).status == 200:
                return None
            time.sleep(0.1)
        return "%s: the API did not answer within %.0f s" % (self.name, wait)

    def signal(self, sig, why=None):
        with self.lock:
            if why:
                self.expected[self.inc] = why
            if sig == signal.SIGSTOP:
                self.stopped = True
            if sig == signal.SIGCONT:
                self.stopped = False
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait_exit(self, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            st = self.exit_status()
            if st is not None:
                return st
            time.sleep(0.05)
        return None

    def reap(self):
        for p in self.procs:
            p.poll()

    def api(self, method, path, body=None, timeout=10.0):
        return call(self.sock, method, path, body, timeout)


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    for h in cfg["hosts"]:
        h["name"] = "d%d" % h["i"]
    return cfg


# --- the cluster as the checks see it ------------------------------------------


def runc_list(d):
    if not os.path.isdir(d.runc_root):
        return []
    try:
        out = subprocess.run(
            ["runc", "--root", d.runc_root, "list", "--format", "json"],
            capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
        return json.loads(out) or []
    except (subprocess.SubprocessError, ValueError):
        return []


class Cluster:
    def __init__(self, cfg):
        self.cfg = cfg
        self.daemons = [Daemon(cfg, h) for h in cfg["hosts"] if h["role"] != "client"]
        self.by_name = {d.name: d for d in self.daemons}
        self.managers = [d for d in self.daemons if d.role == "manager"]
        self.workers = [d for d in self.daemons if d.role == "worker"]
        self.client = [h for h in cfg["hosts"] if h["role"] == "client"][0]
        self.sw = cfg["sw"]
        self.seen_ctrs = set()
        self.ctr_ids_file = os.path.join(cfg["dir"], "ctr-ids")

    def learn_node_ids(self):
        for d in self.daemons:
            if d.node_id:
                continue
            r = d.api("GET", "/info", timeout=5)
            if r.status == 200:
                d.node_id = r.body.get("Swarm", {}).get("NodeID") or None

    def by_node(self, node_id):
        for d in self.daemons:
            if d.node_id == node_id:
                return d
        return None

    def leader(self):
        """The daemon a reachable manager says leads, or None."""
        for m in random.sample(self.managers, len(self.managers)):
            if m.stopped or not m.alive():
                continue
            r = m.api("GET", "/nodes", timeout=3)
            if r.status != 200:
                continue
            for n in r.body:
                if n.get("ManagerStatus", {}).get("Leader"):
                    host = n.get("Description", {}).get("Hostname", "")
                    for d in self.daemons:
                        if host == "chaos-h%d" % d.i:
                            return d
        return None

    def nft(self, *args):
        return subprocess.run(
            ["ip", "netns", "exec", self.sw, "nft"] + list(args),
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip

    def cut(self, i, j=None):
        if j is None:
            return self.nft("add", "element", "bridge", "shl", "cut", '{ "vh%d" }' % i)
        return self.nft("add", "element", "bridge", "shl", "pair",
                        '{ "vh%d" . "vh%d", "vh%d" . "vh%d" }' % (i, j, j, i))  # fmt: skip

    def heal_all(self):
        a = self.nft("flush", "set", "bridge", "shl", "cut")
        b = self.nft("flush", "set", "bridge", "shl", "pair")
        return a.returncode == 0 and b.returncode == 0

    def client_reaches(self, ip, port):
        """A TCP connection from the client host to ip:port succeeds (1 s)."""
        r = subprocess.run(
            ["ip", "netns", "exec", self.client["ns"], "timeout", "-k", "1", "2",
             "busybox", "nc", "-w", "1", ip, str(port)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
        )  # fmt: skip
        return r.returncode == 0

    def remember_ctrs(self, ids):
        new = [i for i in ids if i and i not in self.seen_ctrs]
        if new:
            self.seen_ctrs.update(new)
            with open(self.ctr_ids_file, "a") as f:
                f.write("".join(i + "\n" for i in new))

    def snapshot(self):
        """The cluster's state and what stands between it and convergence:
        returns (issues, state). Converged when issues is empty: every daemon
        up, 6 nodes ready with one leader all managers agree on, the managers
        agree on the services, each service runs its replicas with its
        current spec (one task per slot), no other task runs, and on every
        node the running runc containers are exactly its running tasks."""
        issues = []
        state = {"services": None, "tasks": None, "runc": {}}
        for d in self.daemons:
            if not d.alive():
                issues.append("%s is not running" % d.name)
        if issues:
            return issues, state
        self.learn_node_ids()
        leaders = set()
        for m in self.managers:
            r = m.api("GET", "/nodes", timeout=5)
            if r.status != 200:
                issues.append("%s: GET /nodes: %s" % (m.name, r.text()))
                continue
            down = [n.get("Description", {}).get("Hostname") for n in r.body
                    if n.get("Status", {}).get("State") != "ready"]  # fmt: skip
            if len(r.body) != len(self.daemons) or down:
                issues.append("%s sees %d nodes, not ready: %s" % (m.name, len(r.body), down))
            for n in r.body:
                if n.get("ManagerStatus", {}).get("Leader"):
                    leaders.add(n["ID"])
        if len(leaders) != 1:
            issues.append("leaders seen by the managers: %s" % sorted(leaders))
        views = {}
        for m in self.managers:
            r = m.api("GET", "/services", timeout=5)
            if r.status != 200:
                issues.append("%s: GET /services: %s" % (m.name, r.text()))
                continue
            views[m.name] = {s["ID"]: (s["Spec"].get("Name"), s["Version"]["Index"],
                                       fingerprint(s["Spec"])) for s in r.body}  # fmt: skip
            if state["services"] is None or (leaders and m.node_id in leaders):
                state["services"] = r.body
        if len(views) == len(self.managers) and len({json.dumps(v, sort_keys=True)
                                                      for v in views.values()}) != 1:  # fmt: skip
            issues.append("the managers disagree on the services")
        lead = self.by_node(next(iter(leaders))) if len(leaders) == 1 else self.managers[0]
        r = (lead or self.managers[0]).api("GET", "/tasks", timeout=10)
        if r.status != 200:
            issues.append("GET /tasks: %s" % r.text())
            return issues, state
        tasks = r.body
        state["tasks"] = tasks
        self.remember_ctrs(t.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
                           for t in tasks)  # fmt: skip
        services = {s["ID"]: s for s in state["services"] or []}
        for sid, s in services.items():
            spec = s["Spec"]
            want = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
            env = spec["TaskTemplate"].get("ContainerSpec", {}).get("Env", [])
            mine = [t for t in tasks if t.get("ServiceID") == sid and t["DesiredState"] == "running"]
            run = [t for t in mine if t["Status"]["State"] == "running"]
            stale = [t for t in run if t["Spec"].get("ContainerSpec", {}).get("Env", []) != env]
            slots = [t.get("Slot") for t in mine]
            if len(mine) != want or len(run) != want or stale:
                issues.append("%s: %d replicas wanted, %d tasks desired running, %d running, "
                              "%d of an older spec" % (spec["Name"], want, len(mine), len(run),
                                                       len(stale)))  # fmt: skip
            if len(set(slots)) != len(slots):
                issues.append("%s: slots %s desired running more than once" % (spec["Name"], sorted(slots)))
        for t in tasks:
            st = t["Status"]["State"]
            if st == "running" and (t["DesiredState"] != "running" or t.get("ServiceID") not in services):
                issues.append("task %s (slot %s) still runs: desired %s%s" % (
                    t["ID"][:12], t.get("Slot"), t["DesiredState"],
                    "" if t.get("ServiceID") in services else ", its service is gone"))  # fmt: skip
        # The running runc containers of each node are exactly its running tasks.
        for d in self.daemons:
            want = {t["Status"].get("ContainerStatus", {}).get("ContainerID") for t in tasks
                    if t.get("NodeID") == d.node_id and t["Status"]["State"] == "running"}  # fmt: skip
            ctrs = runc_list(d)
            state["runc"][d.name] = ctrs
            self.remember_ctrs(c["id"] for c in ctrs)
            have = {c["id"] for c in ctrs if c.get("status") == "running"}
            if have != want:
                issues.append("%s: runc runs %d containers not in a running task (%s), "
                              "%d running tasks have no running container (%s)" % (
                                  d.name, len(have - want), " ".join(x[:12] for x in sorted(have - want)),
                                  len(want - have), " ".join(str(x)[:12] for x in sorted(want - have, key=str))))  # fmt: skip
        return issues, state


# --- the workload ---------------------------------------------------------------


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.next_id = 100  # run.sh's initial services are ops 1, 2, 3...
        self.reads_failed = 0

    def new_id(self):
        with self.lock:
            i = self.next_id
            self.next_id += 1
            return i

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def count(self, pred):
        with self.lock:
            return sum(1 for o in self.ops if pred(o))


class Client:
    """Issues service creates, updates (env), scales and removes through
    random managers, one at a time, on services of its own (named c<ID>-s<N>),
    and records each op: what it wrote and whether it was acknowledged."""

    def __init__(self, cid, seed, cluster, history, max_live, think):
        self.cid = cid
        self.think = think
        self.rng = random.Random(seed * 7919 + cid)
        self.cluster = cluster
        self.history = history
        self.max_live = max_live
        self.live = {}  # name -> {"acked": bool, "misses": int}
        self.n = 0
        self.stop = None
        self.round_no = 0

    def thread(self, stop, round_no):
        """A thread running the workload until @stop is set."""
        self.stop, self.round_no = stop, round_no
        return threading.Thread(target=self.run, daemon=True)

    def record(self, kind, name, node, reply, t0, fp, extra=None):
        op = {
            "id": extra.pop("id") if extra and "id" in extra else self.history.new_id(),
            "client": self.cid, "round": self.round_no, "kind": kind, "name": name,
            "node": node.name, "t0": t0, "t1": time.monotonic(), "outcome": reply.outcome(),
            "status": reply.status, "detail": reply.text(), "fp": fp,
        }  # fmt: skip
        if extra:
            op.update(extra)
        self.history.add(op)
        return op

    def run(self):
        while not self.stop.is_set():
            # A client's think time: the cluster gets to run what it was
            # told between ops (this paces the load; it waits for nothing).
            if self.stop.wait(self.rng.uniform(0, 2 * self.think)):
                break
            try:
                self.step()
            except Exception as e:  # a bug in the workload: report, keep going
                print("# workload client %d: %s: %s" % (self.cid, type(e).__name__, e), flush=True)
                self.stop.wait(0.5)

    def step(self):
        rng = self.rng
        node = rng.choice(self.cluster.managers)
        live = sorted(self.live)
        if len(live) < self.max_live and (not live or rng.random() < 0.5):
            self.create(node)
            return
        kind = rng.choices(["update", "scale", "remove", "create"], [4, 3, 1, 1])[0]
        if kind == "create" and len(live) >= self.max_live + 1:
            kind = "update"
        if kind == "create":
            self.create(node)
            return
        name = rng.choice(live)
        reader = rng.choice(self.cluster.managers)
        r = reader.api("GET", "/services/" + name, timeout=5)
        if r.status != 200:
            with self.history.lock:
                self.history.reads_failed += 1
            if r.status == 404:
                info = self.live[name]
                info["misses"] += 1
                if not info["acked"] and info["misses"] >= 3:
                    del self.live[name]  # an unknown create that did not happen
            self.stop.wait(0.2)
            return
        version = r.body["Version"]["Index"]
        sid = r.body["ID"]
        if kind == "remove":
            t0 = time.monotonic()
            rep = node.api("DELETE", "/services/" + name, timeout=15)
            op = self.record("remove", name, node, rep, t0, None, {"read_version": version, "sid": sid})
            if op["outcome"] == "ack":
                del self.live[name]
            return
        spec = r.body["Spec"]
        opid = self.history.new_id()
        spec.setdefault("Labels", {})["chaos.op"] = str(opid)
        if kind == "update":
            spec["TaskTemplate"].setdefault("ContainerSpec", {})["Env"] = ["GEN=%d" % opid]
        else:
            cur = spec["Mode"]["Replicated"]["Replicas"]
            spec["Mode"]["Replicated"]["Replicas"] = rng.choice([x for x in range(0, 4) if x != cur])
        t0 = time.monotonic()
        rep = node.api("POST", "/services/%s/update?version=%d" % (sid, version), spec, timeout=15)
        self.record(kind, name, node, rep, t0, fingerprint(spec),
                    {"id": opid, "read_version": version, "sid": sid})  # fmt: skip

    def create(self, node):
        self.n += 1
        name = "c%d-s%d" % (self.cid, self.n)
        for attempt in range(2):
            opid = self.history.new_id()
            spec = make_spec(name, self.rng.randint(0, 3), opid)
            t0 = time.monotonic()
            rep = node.api("POST", "/services/create", spec, timeout=15)
            op = self.record("create", name, node, rep, t0, fingerprint(spec),
                             {"id": opid, "retry": attempt > 0,
                              "sid": rep.body.get("ID") if isinstance(rep.body, dict) else None})  # fmt: skip
            if op["outcome"] != "fail" or attempt > 0:
                self.live.setdefault(name, {"acked": False, "misses": 0})
            if op["outcome"] == "ack":
                self.live[name]["acked"] = True
            if op["outcome"] != "unknown" or self.stop.is_set():
                return
            # The outcome is unknown: retry once, as a client would, through
            # another manager. Both must never exist (names are unique).
            node = self.rng.choice([m for m in self.cluster.managers if m is not node])


# --- the nemesis ------------------------------------------------------------------

FAULT_KINDS = ["kill9", "kill9-leader", "term", "pause", "cut-one", "cut-leader", "cut-minority", "ctr-kill"]


class Deck:
    """Fault kinds drawn from a shuffled deck, reshuffled when empty: a run
    of N faults covers every kind once per len(FAULT_KINDS) faults."""

    def __init__(self, rng):
        self.rng = rng
        self.cards = []

    def draw(self):
        if not self.cards:
            self.cards = list(FAULT_KINDS)
            self.rng.shuffle(self.cards)
        return self.cards.pop()


class Nemesis(threading.Thread):
    """Injects a seeded schedule of faults during one round, one at a time,
    each healed before the next: kill -9 + restart (of any daemon, or of the
    leader), SIGTERM + restart, SIGSTOP/SIGCONT, a host cut off, the
    leader's host cut off, a minority (a manager and a worker) cut off from
    the rest, a task's container killed with runc."""

    def __init__(self, rng, deck, cluster, stats, round_secs, n_faults, log, stop):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.stats = stats
        self.errors = []
        self.log = log
        self.stop = stop
        self.injected = 0
        t = sorted(rng.uniform(0.5, max(1.0, round_secs - 4)) for _ in range(n_faults))
        self.plan = [(at, deck.draw(), rng.random(), rng.random()) for at in t]
        self.start_time = time.monotonic()

    def note(self, text):
        self.log.append("%.1f %s" % (time.monotonic() - self.start_time, text))

    def run(self):
        """The plan, until the round ends (@stop): a fault still on then is
        healed at once, and the faults not begun are dropped."""
        for at, kind, r1, r2 in self.plan:
            # Waiting for the fault's time in the schedule, or the round's end.
            if self.stop.wait(max(0.0, self.start_time + at - time.monotonic())):
                break
            try:
                self.inject(kind, r1, r2)
            except Exception as e:
                self.errors.append("%s: %s: %s" % (kind, type(e).__name__, e))

    def pick(self, r, items):
        return items[int(r * len(items)) % len(items)]

    def hold(self, lo, hi, r):
        """The fault lasts lo..hi seconds, or until the round ends."""
        self.stop.wait(lo + (hi - lo) * r)

    def restart(self, d, kind):
        err = d.start()
        if err:
            self.errors.append("%s: restart: %s" % (kind, err))

    def inject(self, kind, r1, r2):
        c = self.cluster
        if kind in ("kill9", "kill9-leader", "term", "pause"):
            d = c.leader() if kind == "kill9-leader" else self.pick(r1, c.daemons)
            if d is None:
                d = self.pick(r1, c.managers)
                kind = "kill9"
            self.note("%s %s" % (kind, d.name))
            if kind == "pause":
                d.signal(signal.SIGSTOP)
                self.hold(2, 6, r2)
                d.signal(signal.SIGCONT)
            elif kind == "term":
                d.signal(signal.SIGTERM, "term")
                st = d.wait_exit(60)
                if st is None:
                    self.errors.append("term %s: still running 60 s after SIGTERM" % d.name)
                    d.signal(signal.SIGKILL, "kill9")
                    d.wait_exit(10)
                self.restart(d, kind)
            else:
                d.signal(signal.SIGKILL, "kill9")
                if d.wait_exit(10) is None:
                    self.errors.append("%s %s: no exit recorded after SIGKILL" % (kind, d.name))
                self.hold(0.2, 3, r2)
                self.restart(d, kind)
        elif kind in ("cut-one", "cut-leader"):
            d = c.leader() if kind == "cut-leader" else self.pick(r1, c.daemons)
            if d is None:
                d, kind = self.pick(r1, c.managers), "cut-one"
            self.note("%s %s" % (kind, d.name))
            r = c.cut(d.i)
            if r.returncode != 0:
                self.errors.append("%s %s: nft: %s" % (kind, d.name, r.stderr.strip()))
                return
            if c.client_reaches(d.ip, c.cfg["port"]):
                self.errors.append("%s %s: the client host still reaches it" % (kind, d.name))
            self.stats["cuts_verified"] = self.stats.get("cuts_verified", 0) + 1
            self.hold(2, 10, r2)
            if not c.heal_all():
                self.errors.append("%s %s: heal failed" % (kind, d.name))
        elif kind == "cut-minority":
            m = self.pick(r1, c.managers)
            w = self.pick(r2, c.workers)
            group = [m, w]
            self.note("%s %s+%s" % (kind, m.name, w.name))
            for g in group:
                for o in c.daemons:
                    if o not in group:
                        r = c.cut(g.i, o.i)
                        if r.returncode != 0:
                            self.errors.append("%s: nft: %s" % (kind, r.stderr.strip()))
            self.hold(2, 10, r1)
            if not c.heal_all():
                self.errors.append("%s: heal failed" % kind)
        elif kind == "ctr-kill":
            order = c.daemons[int(r1 * len(c.daemons)):] + c.daemons[: int(r1 * len(c.daemons))]
            for d in order:
                running = sorted(x["id"] for x in runc_list(d) if x.get("status") == "running")
                if running:
                    cid = self.pick(r2, running)
                    self.note("%s %s %s" % (kind, d.name, cid[:12]))
                    subprocess.run(["runc", "--root", d.runc_root, "kill", cid, "KILL"],
                                   capture_output=True, timeout=20)  # fmt: skip
                    break
            else:
                self.note("ctr-kill: no container runs anywhere")
                return
        self.stats[kind] = self.stats.get(kind, 0) + 1
        self.injected += 1


class Monitor(threading.Thread):
    """Watches every daemon's exit file: a death nobody caused is a crash
    (recorded, and the daemon restarted so the run goes on)."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.crashes = []
        self.halt = threading.Event()
        self.paused = threading.Event()

    def scan(self, restart):
        for d in self.cluster.daemons:
            d.reap()
            with d.lock:
                st = d.exit_status()
                if st is None or d.inc in d.expected or d.inc in d.reported:
                    continue
                d.reported.add(d.inc)
                self.crashes.append((d.name, d.inc, st, sanitizer_lines(d.log, 8, *d.log_span(d.inc))))
            if restart:
                d.start()

    def run(self):
        while not self.halt.wait(0.5):
            if not self.paused.is_set():
                self.scan(True)


def sanitizer_lines(path, n, start=0, end=None):
    """The first sanitizer report in bytes [start, end) of a log: its first
    line and those after it, @n lines at most; or the last lines of that
    span when it has no report."""
    out, tail = [], []
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(max(0, end - start))
    except OSError:
        return []
    for line in data.decode(errors="replace").splitlines():
        if out or any(m in line for m in SANITIZER_MARKS):
            out.append(line.rstrip())
            if len(out) >= n:
                break
        else:
            tail = (tail + [line.rstrip()])[-4:]
    return out or ["(no sanitizer report; last lines:)"] + tail


# --- checks -----------------------------------------------------------------------


def show(fp):
    """A fingerprint, short: "op L (ENV, N replicas)"."""
    if fp is None or fp == ABSENT:
        return "absent"
    label, env, replicas, image, command = json.loads(fp)
    extra = "" if image == IMAGE and command == COMMAND else ", image %s %s" % (image, command)
    return "op %s (%s, %s replicas%s)" % (label, " ".join(env), replicas, extra)


def check_ops(history, services):
    """Every acknowledged op is reflected: per service name the last
    acknowledged op wins, and ops after it whose outcome is unknown may have
    won instead; nothing else (no half-applied spec, no duplicate name, no
    service nobody created). Returns (violations, names checked)."""
    with history.lock:
        ops = sorted(history.ops, key=lambda o: o["id"])
    by_name = {}
    for o in ops:
        by_name.setdefault(o["name"], []).append(o)
    actual = {}
    for s in services:
        actual.setdefault(s["Spec"]["Name"], []).append(s)
    fp_of = {str(o["id"]): o["fp"] for o in ops if o.get("fp")}
    bad = []
    for name in sorted(set(by_name) | set(actual)):
        have = actual.get(name, [])
        if len(have) > 1:
            bad.append("%s: %d services carry this name (%s)" % (name, len(have), " ".join(s["ID"] for s in have)))
            continue
        now = fingerprint(have[0]["Spec"]) if have else ABSENT
        mine = by_name.get(name)
        if mine is None:
            bad.append("%s: exists, but no op created it" % name)
            continue
        acked = [i for i, o in enumerate(mine) if o["outcome"] == "ack"]
        allowed = {}
        if acked:
            last = mine[acked[-1]]
            allowed[ABSENT if last["kind"] == "remove" else last["fp"]] = last
            tail = mine[acked[-1] + 1:]
        else:
            allowed[ABSENT] = None
            tail = mine
        for o in tail:
            if o["outcome"] == "unknown":
                allowed.setdefault(ABSENT if o["kind"] == "remove" else o["fp"], o)
        if now in allowed:
            continue
        label = json.loads(now)[0] if now != ABSENT else None
        written = fp_of.get(label)
        why = ("half-applied: op %s wrote %s" % (label, show(written)) if written and written != now
               else "the spec of op %s, which is not the last acknowledged one" % label if written
               else "lost" if now == ABSENT else "a spec no op wrote")  # fmt: skip
        last = mine[acked[-1]] if acked else None
        bad.append("%s: final state %s: %s; allowed: %s; last acknowledged: %s" % (
            name, show(now), why, " | ".join(sorted(show(a) for a in allowed)),
            "op %d %s via %s (%s)" % (last["id"], last["kind"], last["node"], last["detail"])
            if last else "none"))  # fmt: skip
    return bad, len(set(by_name) | set(actual))


class Tap:
    def __init__(self, start):
        self.n = start
        self.failed = 0

    def ok(self, name, good, details=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if good else "not ok", self.n, name), flush=True)
        if not good:
            self.failed += 1
            for line in list(details)[:40]:
                print("#   %s" % line, flush=True)
        return good


def converge(cluster, bound):
    """Poll until the cluster converges (twice in a row); returns
    (seconds or None, last issues, last state)."""
    t0 = time.monotonic()
    streak = 0
    issues, state = ["not polled"], {}
    while time.monotonic() - t0 < bound:
        issues, state = cluster.snapshot()
        if not issues:
            streak += 1
            if streak == 2:
                return time.monotonic() - t0, [], state
        else:
            streak = 0
        time.sleep(0.25)
    return None, issues, state


def slot_issues(state):
    """On one snapshot: no slot of a service runs twice, no container runs
    twice, each running task's container is running on its node."""
    out = []
    run = [t for t in state.get("tasks") or [] if t["Status"]["State"] == "running"]
    seen = {}
    for t in run:
        key = (t.get("ServiceID"), t.get("Slot"))
        if key in seen:
            out.append("service %s slot %s runs twice: tasks %s and %s" % (key[0][:12], key[1], seen[key][:12], t["ID"][:12]))
        seen[key] = t["ID"]
    ctrs = {}
    for name, lst in (state.get("runc") or {}).items():
        for c in lst:
            if c.get("status") == "running":
                if c["id"] in ctrs:
                    out.append("container %s runs on %s and %s" % (c["id"][:12], ctrs[c["id"]], name))
                ctrs[c["id"]] = name
    for t in run:
        cid = t["Status"].get("ContainerStatus", {}).get("ContainerID")
        if cid not in ctrs:
            out.append("task %s (slot %s) is running without a running container" % (t["ID"][:12], t.get("Slot")))
    return out


def cmd_run(args):
    cfg = load_config(args.config)
    cluster = Cluster(cfg)
    tap = Tap(args.tap_start)
    history = History()
    stats = {}
    converge_times = []
    lost_total = 0
    nem_log = []
    mon = Monitor(cluster)
    failed_dir = None

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    mon.start()
    try:
        # The initial services (created by run.sh) join the model as acknowledged.
        secs, issues, state = converge(cluster, args.bound)
        tap.ok("the initial services run (%s)" % ("%.1f s" % secs if secs is not None else "timeout"),
               secs is not None, issues)  # fmt: skip
        for s in state.get("services") or []:
            label = s["Spec"].get("Labels", {}).get("chaos.op", "0")
            history.add({"id": int(label) if label.isdigit() else 0, "client": 0, "round": 0, "kind": "initial",
                         "name": s["Spec"]["Name"], "node": "-", "t0": 0, "t1": 0,
                         "outcome": "ack", "status": 201, "detail": "run.sh", "fp": fingerprint(s["Spec"])})  # fmt: skip
        clients = [Client(c, args.seed, cluster, history, args.max_live, args.think) for c in (1, 2)]
        nem_rng = random.Random(args.seed)
        deck = Deck(random.Random(nem_rng.random()))
        round_rows = []
        for rnd in range(1, args.rounds + 1):
            stop = threading.Event()
            threads = [c.thread(stop, rnd) for c in clients]
            n_faults = nem_rng.randint(args.faults_min, args.faults_max)
            before = len(history.ops)
            nem_log.append("round %d" % rnd)
            for t in threads:
                t.start()
            nem = Nemesis(random.Random(nem_rng.random()), deck, cluster, stats, args.round_secs,
                          n_faults, nem_log, stop)  # fmt: skip
            nem.start()
            stop.wait(args.round_secs)  # the round's length: it ends, whatever runs
            stop.set()
            nem.join()  # the fault still on is healed (a killed daemon restarted)
            for t in threads:
                t.join(60)
            # Faults stop; everything heals.
            cluster.heal_all()
            for d in cluster.daemons:
                if d.stopped:
                    d.signal(signal.SIGCONT)
            ops_round = history.ops[before:]
            acked = sum(1 for o in ops_round if o["outcome"] == "ack")
            unknown = sum(1 for o in ops_round if o["outcome"] == "unknown")
            plan = ", ".join(k for _, k, _, _ in nem.plan)
            print("# round %d: faults planned [%s], %d injected; ops %d (acknowledged %d, unknown %d)" % (
                rnd, plan, nem.injected, len(ops_round), acked, unknown), flush=True)  # fmt: skip
            tap.ok("round %d: the nemesis injected and healed %d faults (%d planned)" % (
                rnd, nem.injected, len(nem.plan)),
                   not nem.errors, nem.errors)  # fmt: skip
            tap.ok("round %d: the workload made progress under faults (%d of %d ops acknowledged)" % (
                rnd, acked, len(ops_round)), acked > 0, ["no op was acknowledged during the round"])  # fmt: skip
            secs, issues, state = converge(cluster, args.bound)
            if secs is not None:
                converge_times.append(secs)
            tap.ok("round %d: converged in %s (bound %d s)" % (
                rnd, "%.1f s" % secs if secs is not None else "more than the bound", args.bound),
                secs is not None, issues)  # fmt: skip
            bad, names = check_ops(history, state.get("services") or [])
            lost_total = max(lost_total, len(bad))
            tap.ok("round %d: every acknowledged op is reflected over %d services (%d acknowledged so far, lost %d)" % (
                rnd, names, history.count(lambda o: o["outcome"] == "ack"), len(bad)), not bad, bad)  # fmt: skip
            si = slot_issues(state)
            tap.ok("round %d: each slot runs exactly once, every running task has its container" % rnd,
                   not si, si)  # fmt: skip
            round_rows.append((rnd, nem.injected, len(ops_round), acked, unknown, secs))
        mon.paused.set()
        mon.scan(False)

        # Remove every service; nothing may be left running.
        leader = cluster.leader() or cluster.managers[0]
        r = leader.api("GET", "/services", timeout=10)
        errs = []
        for s in r.body if r.status == 200 else []:
            for attempt in range(20):
                rep = leader.api("DELETE", "/services/" + s["ID"], timeout=15)
                if rep.status in (200, 204, 404):
                    break
                time.sleep(0.5)  # retry pace while the cluster answers 5xx
            else:
                errs.append("DELETE %s: %s" % (s["Spec"]["Name"], rep.text()))

        def nothing_runs():
            issues, st = cluster.snapshot()
            left = [(n, c["id"][:12], c.get("status")) for n, lst in st.get("runc", {}).items() for c in lst]
            if st.get("services"):
                issues.append("%d services left" % len(st["services"]))
            if left:
                issues.append("runc containers left: %s" % left)
            return issues

        t0 = time.monotonic()
        left = ["not polled"]
        while time.monotonic() - t0 < args.bound:
            left = nothing_runs()
            if not left:
                break
            time.sleep(0.25)
        tap.ok("every service removed: no task runs, no runc container is left (%.1f s)" % (time.monotonic() - t0),
               r.status == 200 and not errs and not left, errs + left)  # fmt: skip

        # Stop every daemon: each exits 0 (the sanitizer build exits non-zero on a report).
        for d in cluster.daemons:
            d.signal(signal.SIGCONT)
            d.signal(signal.SIGTERM, "term")
        hung = []
        for d in cluster.daemons:
            if d.wait_exit(60) is None:
                hung.append("%s incarnation %d still runs 60 s after SIGTERM" % (d.name, d.inc))
                d.signal(signal.SIGKILL)
                d.wait_exit(10)
        mon.halt.set()
        mon.scan(False)
        terms = []
        for d in cluster.daemons:
            for k, why in sorted(d.expected.items()):
                if why == "term":
                    terms.append((d.name, k, d.exit_status(k)))
        bad_terms = hung + ["%s incarnation %d exited %s after SIGTERM" % t for t in terms
                            if t[2] is not None and t[2] != 0]  # fmt: skip
        tap.ok("every daemon exits 0 on SIGTERM (%d stops, %d of them graceful restarts)" % (
            len(terms), stats.get("term", 0)), not bad_terms, bad_terms)  # fmt: skip
        tap.ok("no daemon died unless the nemesis killed it",
               not mon.crashes, ["%s incarnation %d exited %s; %s" % (n, k, st, " / ".join(l))
                                 for n, k, st, l in mon.crashes])  # fmt: skip
        reports = []
        for d in cluster.daemons:
            lines = sanitizer_lines(d.log, 30)
            if not lines[0].startswith("(no sanitizer report"):
                with open(d.log, errors="replace") as f:
                    n = sum(1 for line in f if any(m in line for m in SANITIZER_MARKS))
                reports.append("%s (%d report lines): %s" % (d.log, n, lines[0]))
                reports += lines[1:]
        tap.ok("no sanitizer report in any daemon's log", not reports, reports)

        # Leaks, with every daemon stopped.
        left = []
        for d in cluster.daemons:
            left += ["%s: runc %s (%s)" % (d.name, c["id"], c.get("status")) for c in runc_list(d)]
        tap.ok("no runc container left", not left, left)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if " %s/" % cfg["dir"] in line]
        tap.ok("no mount left under the test dir", not mounts, mounts)
        cg = sorted(p for cid in cluster.seen_ctrs
                    for p in glob.glob("/sys/fs/cgroup/*/shoal/" + cid) + glob.glob("/sys/fs/cgroup/shoal/" + cid))  # fmt: skip
        tap.ok("no cgroup left of the %d containers the run saw" % len(cluster.seen_ctrs), not cg, cg)
        veths = []
        for d in cluster.daemons:
            out = subprocess.run(["ip", "-n", d.ns, "-o", "link", "show", "type", "veth"],
                                 capture_output=True, text=True).stdout  # fmt: skip
            for line in out.splitlines():
                dev = line.split(":")[1].strip().split("@")[0]
                if dev != "eth0":
                    veths.append("%s: %s" % (d.name, dev))
        tap.ok("no veth left on the hosts but eth0", not veths, veths)

        # The summary.
        total = len(history.ops)
        kinds = {}
        for o in history.ops:
            k = kinds.setdefault(o["kind"], [0, 0, 0, 0])
            k[0] += 1
            k[{"ack": 1, "fail": 2, "unknown": 3}[o["outcome"]]] += 1
        print("# summary (seed %d, %d rounds of %d s, convergence bound %d s)" % (
            args.seed, args.rounds, args.round_secs, args.bound))  # fmt: skip
        print("#   faults injected:")
        for k in FAULT_KINDS:
            print("#     %-14s %4d" % (k, stats.get(k, 0)))
        print("#     %-14s %4d  (partitions checked from the client host: %d)" % (
            "total", sum(stats.get(k, 0) for k in FAULT_KINDS), stats.get("cuts_verified", 0)))  # fmt: skip
        print("#   operations     attempted  acknowledged  failed  unknown")
        for k in ("create", "update", "scale", "remove"):
            v = kinds.get(k, [0, 0, 0, 0])
            print("#     %-12s %9d %13d %7d %8d" % (k, v[0], v[1], v[2], v[3]))
        print("#     %-12s %9d %13d %7d %8d" % (
            "total", total - kinds.get("initial", [0])[0],
            sum(v[1] for k, v in kinds.items() if k != "initial"),
            sum(v[2] for v in kinds.values()), sum(v[3] for v in kinds.values())))  # fmt: skip
        print("#   lost (acknowledged, not reflected): %d" % lost_total)
        reasons = {}
        for o in history.ops:
            if o["outcome"] != "ack":
                key = "%s %s" % (o["outcome"], re.sub(r"\b[0-9a-z]{25}\b", "<id>", o["detail"])[:90])
                reasons[key] = reasons.get(key, 0) + 1
        for key, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:8]:
            print("#     %4d x %s" % (n, key))
        if converge_times:
            print("#   time to converge: max %.1f s, median %.1f s (%d of %d rounds converged)" % (
                max(converge_times), statistics.median(converge_times), len(converge_times), args.rounds))  # fmt: skip
        print("#   round  faults  ops  acknowledged  unknown  converged")
        for rnd, nf, no, na, nu, secs in round_rows:
            print("#   %5d %7d %4d %13d %8d  %s" % (rnd, nf, no, na, nu, "%.1f s" % secs if secs is not None else "no"))
        print("#   crashes: %d; daemon exits checked: %d" % (len(mon.crashes), len(terms)))
    finally:
        mon.halt.set()
        cluster.heal_all()
        for d in cluster.daemons:
            if d.stopped:
                d.signal(signal.SIGCONT)
        path = os.path.join(cfg["dir"], "history.json")
        with open(path, "w") as f:
            json.dump({"seed": args.seed, "ops": history.ops, "nemesis": nem_log}, f, indent=1)
        if tap.failed:
            failed_dir = "/tmp/shoal-chaos.seed%d.%d" % (args.seed, os.getpid())
            os.makedirs(failed_dir, exist_ok=True)
            for d in cluster.daemons:
                if os.path.exists(d.log):
                    subprocess.run(["cp", d.log, os.path.join(failed_dir, d.name + ".log")])
            subprocess.run(["cp", path, failed_dir])
            print("# history and daemon logs kept in %s" % failed_dir)
        print("# nemesis: %s" % "; ".join(nem_log))
        with open(os.path.join(cfg["dir"], "tap-count"), "w") as f:
            f.write("%d %d\n" % (tap.n, tap.failed))
    return 1 if tap.failed else 0


def cmd_start(args):
    cfg = load_config(args.config)
    cluster = Cluster(cfg)
    errs = []
    threads = []
    for name in args.names:
        d = cluster.by_name[name]
        t = threading.Thread(target=lambda d=d: errs.append(d.start()))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    errs = [e for e in errs if e]
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("spec")
    s.add_argument("name")
    s.add_argument("replicas", type=int)
    s.add_argument("gen", type=int)
    s = sub.add_parser("start")
    s.add_argument("--config", required=True)
    s.add_argument("names", nargs="+")
    s = sub.add_parser("run")
    s.add_argument("--config", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--round-secs", type=int, required=True)
    s.add_argument("--faults-min", type=int, required=True)
    s.add_argument("--faults-max", type=int, required=True)
    s.add_argument("--max-live", type=int, default=2)
    s.add_argument("--think", type=float, default=0.25, help="mean seconds between a client's ops")
    s.add_argument("--bound", type=int, default=60)
    s.add_argument("--tap-start", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "spec":
        print(json.dumps(make_spec(a.name, a.replicas, a.gen)))
        return 0
    if a.cmd == "start":
        return cmd_start(a)
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
