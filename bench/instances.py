#!/usr/bin/env python3
"""Measuring half of bench/instances.sh (which starts the servers and writes RESULTS.md).

Subcommands, each printing one JSON document on stdout (progress goes to stderr):

  ttr        time-to-ready: from just before the create POST is sent to the first successful
             `SELECT 1` over sslmode=verify-full (Berth's CA, the returned password), retrying the
             connection every ~5 ms. Optionally waits for the spare pool to be full between creates.
  capacity   creates small instances until a limit or something gives, sampling PSS on the way.
  breakdown  times the pieces of a cold create by hand (cp of the template, postgres start, the
             owner's role and database) to show where the cold path spends its time.
  cleanup    deletes every instance of a project through the API and waits until they are gone.

Needs psycopg 3 (libpq underneath) in bench/.venv; everything else is the standard library.
"""

import argparse
import glob
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse

import psycopg


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# API client


class Api:
    def __init__(self, base, username="admin", password=None):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None
        self.token = None
        if password is not None:
            self.login(username, password)

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.connect()
        return self.conn

    def request(self, method, path, body=None, auth=True):
        headers = {"content-type": "application/json"}
        if auth and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                c = self._conn()
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return r.status, doc

    def ok(self, method, path, body=None, want=(200, 201, 202, 204)):
        status, doc = self.request(method, path, body)
        if status not in want:
            raise RuntimeError(f"{method} {path} -> {status}: {doc}")
        return doc

    def login(self, username, password):
        self.token = None
        doc = self.ok("POST", "/api/v1/auth/token", {"username": username, "password": password})
        self.token = doc["access_token"]

    def prepare_connect(self):
        """Opens the keep-alive connection now, so the timed POST does not pay for a TCP connect."""
        self._conn()

    def count(self, query):
        return self.ok("GET", f"/api/v1/instances?limit=1&{query}")["count"]


def create_body(name, project, memory="256MB"):
    return {"name": name, "project_id": project, "engine": "postgres", "version": "15",
            "region": "local", "memory": memory}


# ---------------------------------------------------------------------------------------------
# Helpers


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return None
    k = max(1, min(len(s), int(round(p / 100.0 * len(s) + 0.4999))))
    return s[k - 1]


def summary_ms(values):
    if not values:
        return None
    return {"n": len(values), "min": min(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "max": max(values), "mean": statistics.fmean(values)}


def iso_to_epoch(s):
    if s is None:
        return None
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])  # kB
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def sysdb_rows(sysdb_socket, sql):
    with psycopg.connect(host=sysdb_socket, port=5432, user="postgres", dbname="berth",
                         connect_timeout=5) as c:
        return c.execute(sql).fetchall()


def sysdb_scalar(sysdb_socket, sql):
    return sysdb_rows(sysdb_socket, sql)[0][0]


def connect_once(url, password, ca, timeout=5):
    c = psycopg.connect(url, password=password, sslrootcert=ca, connect_timeout=timeout)
    try:
        c.execute("SELECT 1").fetchone()
    finally:
        c.close()


def classify(err):
    s = str(err).lower()
    for key, label in (("connection refused", "refused"), ("password authentication failed", "auth"),
                       ("does not exist", "missing-role-or-db"), ("certificate", "tls-cert"),
                       ("starting up", "starting"), ("shutting down", "stopping"),
                       ("timeout", "timeout")):
        if key in s:
            return label
    return s.strip().splitlines()[0][:80] if s.strip() else type(err).__name__


# ---------------------------------------------------------------------------------------------
# Time to ready


def wait_job_done(api, job_id, limit=180):
    deadline = time.time() + limit
    while time.time() < deadline:
        job = api.ok("GET", f"/api/v1/jobs/{job_id}")
        if job["state"] not in ("PENDING", "STARTED"):
            return job
        time.sleep(0.05)
    raise RuntimeError(f"job {job_id} did not finish in {limit} s")


def wait_spares(sysdb_socket, target, limit):
    t = time.time()
    while time.time() - t < limit:
        if sysdb_scalar(sysdb_socket, "SELECT count(*) FROM spares WHERE state = 'ready'") >= target:
            return time.time() - t
        time.sleep(0.1)
    raise RuntimeError(f"spare pool did not reach {target} ready in {limit} s")


def timed_create(api, name, project, ca, poll=0.005, limit=120):
    """One create; returns timings in ms (t=0 just before the POST is sent)."""
    api.prepare_connect()
    wall0 = time.time()
    t0 = time.perf_counter()
    status, doc = api.request("POST", "/api/v1/instances", create_body(name, project))
    t_post = time.perf_counter()
    if status != 202:
        raise RuntimeError(f"create {name} -> {status}: {doc}")
    url, password = doc["connection_url"], doc["password"]
    attempts, errors = 0, {}
    last_fail_end = None
    while True:
        attempt_start = time.perf_counter()
        attempts += 1
        try:
            connect_once(url, password, ca, timeout=5)
            t_ready = time.perf_counter()
            break
        except psycopg.Error as e:
            label = classify(e)
            errors[label] = errors.get(label, 0) + 1
            last_fail_end = time.perf_counter()
            if time.perf_counter() - t0 > limit:
                raise RuntimeError(f"{name} not ready after {limit} s: {e}")
            time.sleep(poll)
    return {
        "name": name, "id": doc["id"], "job_id": doc["job_id"], "port": doc.get("port"),
        "wall0": wall0,
        "post_ms": (t_post - t0) * 1000,
        "ready_ms": (t_ready - t0) * 1000,
        # The server rejected the last failed attempt near its end, so the owner's credentials
        # became valid between then and the end of the successful attempt.
        "last_fail_end_ms": None if last_fail_end is None else (last_fail_end - t0) * 1000,
        "success_attempt_start_ms": (attempt_start - t0) * 1000,
        "attempts": attempts, "errors": errors, "url": url, "password": password,
    }


def connect_cost(url, password, ca, n=50):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        connect_once(url, password, ca)
        times.append((time.perf_counter() - t) * 1000)
    return summary_ms(times)


def psql_connect_cost(url, password, ca, n=20):
    if not shutil.which("psql"):
        return None
    env = dict(os.environ, PGPASSWORD=password, PGSSLROOTCERT=ca)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["psql", url, "-XAtqc", "SELECT 1"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    return summary_ms(times)


def cmd_ttr(a):
    api = Api(a.base, password=a.password)
    results, pool_waits = [], []
    warmup = None
    if a.warmup:
        # The first create of a version may build the template cluster (initdb): measured, but
        # reported apart from the 20.
        if a.spares:
            pool_waits.append(wait_spares(a.sysdb, a.spares, a.pool_timeout))
        warmup = timed_create(api, f"{a.prefix}-warmup", a.project, a.ca)
        wait_job_done(api, warmup["job_id"])
        log(f"  warm-up create: ready in {warmup['ready_ms']:.0f} ms")
    for i in range(a.count):
        if a.spares:
            time.sleep(a.settle)
            pool_waits.append(wait_spares(a.sysdb, a.spares, a.pool_timeout))
        else:
            time.sleep(a.settle)
        load = loadavg()
        r = timed_create(api, f"{a.prefix}-{i:02d}", a.project, a.ca)
        job = wait_job_done(api, r["job_id"])
        r["load"] = load
        r["job_state"] = job["state"]
        created, started, finished = (iso_to_epoch(job[k]) for k in ("created_at", "started_at", "finished_at"))
        r["job_queue_ms"] = (started - created) * 1000 if started and created else None
        r["job_run_ms"] = (finished - started) * 1000 if finished and started else None
        r["job_finished_after_post_ms"] = (finished - r["wall0"]) * 1000 if finished else None
        r["job_started_after_post_ms"] = (started - r["wall0"]) * 1000 if started else None
        results.append(r)
        log(f"  {r['name']}: post {r['post_ms']:.1f} ms, ready {r['ready_ms']:.1f} ms "
            f"({r['attempts']} attempts {r['errors']}), job queue {r['job_queue_ms']:.0f} ms run {r['job_run_ms']:.0f} ms")
    last = results[-1]
    cost = connect_cost(last["url"], last["password"], a.ca)
    psql_cost = psql_connect_cost(last["url"], last["password"], a.ca)
    out = {
        "count": len(results),
        "ready_ms": summary_ms([r["ready_ms"] for r in results]),
        "ready_lower_bound_ms": summary_ms([r["last_fail_end_ms"] or r["post_ms"] for r in results]),
        "post_ms": summary_ms([r["post_ms"] for r in results]),
        "job_queue_ms": summary_ms([r["job_queue_ms"] for r in results if r["job_queue_ms"] is not None]),
        "job_run_ms": summary_ms([r["job_run_ms"] for r in results if r["job_run_ms"] is not None]),
        "job_finished_after_post_ms": summary_ms([r["job_finished_after_post_ms"] for r in results
                                                   if r["job_finished_after_post_ms"] is not None]),
        "attempts": summary_ms([r["attempts"] for r in results]),
        "connect_ms": cost,
        "psql_connect_ms": psql_cost,
        "pool_wait_s": summary_ms(pool_waits) if pool_waits else None,
        "warmup": None if warmup is None else {k: warmup[k] for k in ("ready_ms", "post_ms", "attempts", "errors")},
        "jobs_failed": [r["name"] for r in results if r["job_state"] != "SUCCESS"],
        "load": [r["load"] for r in results],
        "runs": [{k: v for k, v in r.items() if k not in ("password", "url")} for r in results],
    }
    print(json.dumps(out, indent=1))


# ---------------------------------------------------------------------------------------------
# Memory of idle instances


def proc_children():
    kids = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                s = f.read()
        except OSError:
            continue
        pid = int(stat.split("/")[2])
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(pid)
    return kids


def rollup(pid):
    vals = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "kB":
                    vals[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return None
    return vals


def tree(pid, kids):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def postmaster_pids(data_dir):
    pids = {}
    for f in glob.glob(os.path.join(data_dir, "instances", "*", "pgdata", "postmaster.pid")):
        try:
            with open(f) as fh:
                pids[f.split("/")[-3]] = int(fh.readline().strip())
        except (OSError, ValueError):
            pass
    return pids


def sample_pss(data_dir, berth_pid=None):
    """PSS (kB) of each instance's process tree (postmaster and its children)."""
    kids = proc_children()
    per, procs, anon, file_, shmem, rss, private = [], [], [], [], [], [], []
    for _iid, pm in postmaster_pids(data_dir).items():
        tot = {"Pss": 0, "Pss_Anon": 0, "Pss_File": 0, "Pss_Shmem": 0, "Rss": 0, "Private": 0}
        pids = tree(pm, kids)
        n = 0
        for p in pids:
            r = rollup(p)
            if r is None:
                continue
            n += 1
            for k in ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Rss"):
                tot[k] += r.get(k, 0)
            tot["Private"] += r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
        if n == 0:
            continue
        per.append(tot["Pss"]); procs.append(n); anon.append(tot["Pss_Anon"]); file_.append(tot["Pss_File"])
        shmem.append(tot["Pss_Shmem"]); rss.append(tot["Rss"]); private.append(tot["Private"])
    system = None
    sys_pid_file = os.path.join(data_dir, "system-pg", "postmaster.pid")
    if os.path.exists(sys_pid_file):
        with open(sys_pid_file) as fh:
            spm = int(fh.readline().strip())
        system = sum((rollup(p) or {}).get("Pss", 0) for p in tree(spm, kids))
    berth = (rollup(berth_pid) or {}).get("Pss") if berth_pid else None
    mi = meminfo()
    mb = lambda kb: round(kb / 1024, 2)
    return {
        "instances": len(per),
        "pss_total_mb": mb(sum(per)),
        "pss_per_instance_mb": {"mean": mb(statistics.fmean(per)) if per else None,
                                "median": mb(statistics.median(per)) if per else None,
                                "min": mb(min(per)) if per else None, "max": mb(max(per)) if per else None},
        "pss_anon_mean_mb": mb(statistics.fmean(anon)) if anon else None,
        "pss_file_mean_mb": mb(statistics.fmean(file_)) if file_ else None,
        "pss_shmem_mean_mb": mb(statistics.fmean(shmem)) if shmem else None,
        "rss_mean_mb": mb(statistics.fmean(rss)) if rss else None,
        "private_mean_mb": mb(statistics.fmean(private)) if private else None,
        "processes_per_instance": statistics.median(procs) if procs else None,
        "processes_total": sum(procs),
        "berth_pss_mb": mb(berth) if berth else None,
        "system_pg_pss_mb": mb(system) if system else None,
        "mem_available_mb": mb(mi["MemAvailable"]), "mem_free_mb": mb(mi["MemFree"]),
        "shmem_mb": mb(mi.get("Shmem", 0)), "page_tables_mb": mb(mi.get("PageTables", 0)),
        "slab_mb": mb(mi.get("Slab", 0)),
        "load": loadavg(), "time": time.time(),
    }


def disk_free_gib(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2**30


def cmd_capacity(a):
    api = Api(a.base, password=a.password)
    t_start = time.time()
    milestones = sorted(set(int(x) for x in a.samples.split(",") if x))
    samples, gave, posted, post_ms = [], None, 0, []
    mem0 = meminfo()
    disk0 = disk_free_gib(a.data_dir)
    log(f"  start: MemAvailable {mem0['MemAvailable'] // 1024} MiB, disk free {disk0:.1f} GiB")

    def settled():
        """Waits until nothing is creating; returns the number of failed instances."""
        deadline = time.time() + 300
        while api.count("status=creating") > 0:
            if time.time() > deadline:
                raise RuntimeError("creates did not settle in 300 s")
            time.sleep(0.25)
        return api.count("status=failed")

    def take_sample(label):
        time.sleep(a.idle_wait)  # let start-up activity (checkpoints, autovacuum launcher) pass
        s = sample_pss(a.data_dir, a.berth_pid)
        s["label"] = label
        s["running"] = api.count("status=running")
        s["elapsed_s"] = round(time.time() - t_start, 1)
        s["disk_free_gib"] = round(disk_free_gib(a.data_dir), 2)
        samples.append(s)
        log(f"  sample at {s['running']} running: PSS/instance mean {s['pss_per_instance_mb']['mean']} MB, "
            f"total {s['pss_total_mb']} MB, MemAvailable {s['mem_available_mb']} MB, load {s['load']}")

    next_ms = list(milestones)
    last_check = 0.0
    while True:
        now = time.time()
        if posted >= a.max:
            gave = f"reached the configured maximum of {a.max} instances (nothing gave before that)"
            break
        if now - t_start > a.budget:
            gave = f"time budget of {a.budget} s ran out (nothing else gave)"
            break
        avail_gib = meminfo()["MemAvailable"] / 2**20
        if avail_gib < a.min_avail_gib:
            gave = f"MemAvailable fell to {avail_gib:.2f} GiB (< {a.min_avail_gib} GiB safety stop)"
            break
        dfree = disk_free_gib(a.data_dir)
        if dfree < a.min_disk_gib:
            gave = f"free disk fell to {dfree:.1f} GiB (< {a.min_disk_gib} GiB safety stop)"
            break
        if a.berth_pid and not os.path.exists(f"/proc/{a.berth_pid}"):
            gave = "the Berth server exited"
            break
        if next_ms and posted >= next_ms[0]:
            failed = settled()
            if failed:
                gave = "a create job failed"
                break
            take_sample(f"at {posted}")
            next_ms.pop(0)
            continue
        # Keep `concurrency` creates in flight (the server runs `runners` jobs at once).
        if now - last_check > 0.2:
            creating = api.count("status=creating")
            failed = api.count("status=failed")
            last_check = now
            if failed:
                gave = "a create job failed"
                break
        if creating >= a.concurrency:
            time.sleep(0.05)
            continue
        t = time.perf_counter()
        status, doc = api.request("POST", "/api/v1/instances", create_body(f"idle-{posted:04d}", a.project))
        post_ms.append((time.perf_counter() - t) * 1000)
        if status != 202:
            gave = f"create #{posted + 1} was refused: HTTP {status} {json.dumps(doc)[:300]}"
            break
        posted += 1
        creating += 1
        if posted % 50 == 0:
            log(f"  {posted} creates posted, {time.time() - t_start:.0f} s, "
                f"MemAvailable {meminfo()['MemAvailable'] // 1024} MiB, load {loadavg()}")
    try:
        failed = settled()
    except RuntimeError as e:
        failed = None
        gave = (gave or "") + f"; and {e}"
    failures = []
    if failed:
        doc = api.ok("GET", "/api/v1/instances?status=failed&limit=5")
        failures = [{"name": r["name"], "status_message": r["status_message"]} for r in doc["results"]]
    if not samples or samples[-1]["instances"] != posted:
        take_sample(f"final ({posted})")
    # How long creates took as the count grew (from the jobs' own timestamps).
    jobs, offset = [], 0
    while True:
        doc = api.ok("GET", f"/api/v1/jobs?type=create&limit=500&offset={offset}")
        jobs.extend(doc["results"])
        offset += 500
        if offset >= doc["count"]:
            break
    runs = []
    for j in jobs:
        s, f = iso_to_epoch(j["started_at"]), iso_to_epoch(j["finished_at"])
        if s and f:
            runs.append((s, (f - s) * 1000))
    runs.sort()
    run_ms = [r for _, r in runs]
    buckets = {}
    for lo, hi in ((0, 10), (90, 110), (len(run_ms) - 10, len(run_ms))):
        part = run_ms[max(lo, 0):hi]
        if part:
            buckets[f"creates {max(lo, 0) + 1}-{min(hi, len(run_ms))}"] = round(statistics.median(part))
    du = None
    some = sorted(glob.glob(os.path.join(a.data_dir, "instances", "*")))
    if some:
        out = subprocess.run(["du", "-sm", some[0]], capture_output=True, text=True).stdout.split()
        du = int(out[0]) if out else None
    mem1 = meminfo()
    print(json.dumps({
        "posted": posted, "failed": failed, "failures": failures, "gave": gave,
        "elapsed_s": round(time.time() - t_start, 1),
        "mem_available_before_mb": mem0["MemAvailable"] // 1024,
        "mem_available_after_mb": mem1["MemAvailable"] // 1024,
        "shmem_before_mb": round(mem0.get("Shmem", 0) / 1024, 1),
        "page_tables_before_mb": round(mem0.get("PageTables", 0) / 1024, 1),
        "slab_before_mb": round(mem0.get("Slab", 0) / 1024, 1),
        "disk_free_before_gib": round(disk0, 1), "disk_free_after_gib": round(disk_free_gib(a.data_dir), 1),
        "disk_per_instance_mb": du,
        "post_ms": summary_ms(post_ms),
        "create_job_run_ms_median": buckets,
        "create_job_run_ms": summary_ms(run_ms),
        "samples": samples,
    }, indent=1))


# ---------------------------------------------------------------------------------------------
# Where a cold create spends its time


def cmd_breakdown(a):
    """Repeats the cold path's steps by hand, as the postgres user, on a scratch copy."""
    template = os.path.join(a.data_dir, "templates", "15", "pgdata")
    pgbin = a.pgbin
    scratch = a.scratch
    res = {"cp": [], "start": [], "createdb": [], "createdb_file_copy": [], "role": [], "stop": [],
           "shmem_start_mb": [], "shmem_createdb_mb": [], "shmem_createdb_file_copy_mb": []}
    settings = ["-c", "shared_buffers=64MB", "-c", "max_connections=25", "-c", "huge_pages=off",
                "-c", "max_worker_processes=4", "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={scratch}/run", "-c", "log_min_messages=warning"]
    try:
        for i in range(a.reps):
            # Alternately the default strategy (WAL_LOG, what Berth runs) and FILE_COPY.
            one_round(template, pgbin, scratch, settings, res, a.port, file_copy=i % 2 == 1)
    finally:
        pidfile = f"{scratch}/pgdata/postmaster.pid"
        if os.path.exists(pidfile):
            try:
                with open(pidfile) as f:
                    os.kill(int(f.readline()), signal.SIGQUIT)
                time.sleep(1)
            except (OSError, ValueError):
                pass
    du = subprocess.run(["du", "-sm", template], capture_output=True, text=True).stdout.split()[0]
    shutil.rmtree(scratch, ignore_errors=True)
    out = {k: summary_ms(v) for k, v in res.items()}
    out["template_mb"] = int(du)
    print(json.dumps(out, indent=1))


def shmem_mb():
    return meminfo()["Shmem"] / 1024


def one_round(template, pgbin, scratch, settings, res, port, file_copy=False):
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(f"{scratch}/run")
    shutil.chown(scratch, "postgres", "postgres"); shutil.chown(f"{scratch}/run", "postgres", "postgres")
    t = time.perf_counter()
    subprocess.run(["cp", "-a", "--reflink=auto", template, f"{scratch}/pgdata"], check=True)
    res["cp"].append((time.perf_counter() - t) * 1000)
    s0 = shmem_mb()
    t = time.perf_counter()
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", f"{pgbin}/postgres", "-D",
                             f"{scratch}/pgdata", "-p", str(port)] + settings,
                            stdout=subprocess.DEVNULL, stderr=open(f"{scratch}/log", "w"),
                            start_new_session=True)
    pidfile = f"{scratch}/pgdata/postmaster.pid"
    while True:
        try:
            with open(pidfile) as f:
                lines = f.read().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                break
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(open(f"{scratch}/log").read())
        time.sleep(0.002)
    res["start"].append((time.perf_counter() - t) * 1000)
    time.sleep(1)
    s1 = shmem_mb()
    res["shmem_start_mb"].append(s1 - s0)
    with psycopg.connect(host=f"{scratch}/run", port=port, user="postgres", dbname="postgres",
                         autocommit=True) as c:
        t = time.perf_counter()
        c.execute("CREATE ROLE probe LOGIN CREATEDB NOCREATEROLE NOSUPERUSER PASSWORD 'x'")
        res["role"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        c.execute("CREATE DATABASE probe OWNER probe" + (" STRATEGY FILE_COPY" if file_copy else ""))
        res["createdb_file_copy" if file_copy else "createdb"].append((time.perf_counter() - t) * 1000)
    # Shared memory the CREATE DATABASE backend touched stays resident after it exits, although
    # no live process's PSS shows it.
    time.sleep(1)
    res["shmem_createdb_file_copy_mb" if file_copy else "shmem_createdb_mb"].append(shmem_mb() - s1)
    # Signal the postmaster itself (runuser does not pass SIGINT on).
    with open(pidfile) as f:
        pm = int(f.readline())
    t = time.perf_counter()
    os.kill(pm, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(pm, signal.SIGQUIT)
        proc.wait(timeout=10)
    res["stop"].append((time.perf_counter() - t) * 1000)


# ---------------------------------------------------------------------------------------------


def cmd_cleanup(a):
    api = Api(a.base, password=a.password)
    ids = []
    while True:
        doc = api.ok("GET", f"/api/v1/instances?project_id={a.project}&limit=500")
        live = [r for r in doc["results"] if r["status"] != "destroying"]
        for r in live:
            st, d = api.request("DELETE", f"/api/v1/instances/{r['id']}")
            if st != 202:
                log(f"  delete {r['name']}: {st} {d}")
            ids.append(r["id"])
        if not live:
            break
    deadline = time.time() + a.timeout
    while api.count(f"project_id={a.project}") > 0 and time.time() < deadline:
        time.sleep(0.2)
    left = api.count(f"project_id={a.project}")
    print(json.dumps({"deleted": len(ids), "left": left}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base", required=True)
    common.add_argument("--password", required=True)
    common.add_argument("--project", required=True)

    t = sub.add_parser("ttr", parents=[common])
    t.add_argument("--ca", required=True)
    t.add_argument("--count", type=int, default=20)
    t.add_argument("--prefix", required=True)
    t.add_argument("--spares", type=int, default=0, help="wait until this many spares are ready before each create")
    t.add_argument("--sysdb", help="the system cluster's socket directory")
    t.add_argument("--pool-timeout", type=float, default=60)
    t.add_argument("--settle", type=float, default=0.5, help="seconds to wait between creates")
    t.add_argument("--warmup", action="store_true")
    t.set_defaults(fn=cmd_ttr)

    c = sub.add_parser("capacity", parents=[common])
    c.add_argument("--data-dir", required=True)
    c.add_argument("--berth-pid", type=int)
    c.add_argument("--max", type=int, default=600)
    c.add_argument("--budget", type=float, default=900)
    c.add_argument("--min-avail-gib", type=float, default=4)
    c.add_argument("--min-disk-gib", type=float, default=15)
    c.add_argument("--concurrency", type=int, default=4)
    c.add_argument("--samples", default="10,100,250,500")
    c.add_argument("--idle-wait", type=float, default=10)
    c.set_defaults(fn=cmd_capacity)

    b = sub.add_parser("breakdown")
    b.add_argument("--data-dir", required=True)
    b.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    b.add_argument("--scratch", required=True)
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--reps", type=int, default=5)
    b.set_defaults(fn=cmd_breakdown)

    d = sub.add_parser("cleanup", parents=[common])
    d.add_argument("--timeout", type=float, default=300)
    d.set_defaults(fn=cmd_cleanup)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
