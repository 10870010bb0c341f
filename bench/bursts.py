#!/usr/bin/env python3
"""Measuring half of bench/bursts.sh (which starts the servers and writes RESULTS.md).

Every create is timed from just before its `POST /api/v1/instances` is sent to the first
successful `SELECT 1` over sslmode=verify-full with the password the POST returned (retrying the
connection every ~5 ms), as in bench/instances.py.

Subcommands, each printing one JSON document on stdout (progress goes to stderr):

  sequence   N creates back to back: each POST is sent as soon as the previous create answered
             its `SELECT 1` (no pause, no waiting for the pool).
  burst      N creates at once: N threads, each with its own keep-alive connection, released
             together; also the span from the first POST to the last `SELECT 1`.
  pool       waits until the spare pool is at rest (no spare warming, the count steady for
             --steady seconds) and reports how long that took, the count, and the memory (PSS)
             the spares' processes hold.

Deleting a series' instances is bench/instances.py's `cleanup`.
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instances as bi  # noqa: E402  (shared API client and helpers)

log = bi.log


def finish(api, r):
    """Adds the job's own timestamps and its steps' durations (from the job's `steps`)."""
    job = bi.wait_job_done(api, r["job_id"])
    r["job_state"] = job["state"]
    created, started, finished = (bi.iso_to_epoch(job[k]) for k in ("created_at", "started_at", "finished_at"))
    r["job_queue_ms"] = (started - created) * 1000 if started and created else None
    r["job_run_ms"] = (finished - started) * 1000 if finished and started else None
    r["steps_ms"] = {s["name"]: s["duration_ms"] for s in job.get("steps") or [] if s.get("duration_ms") is not None}
    # A create that claimed a spare names its first step so (None: the server records no steps).
    names = [s["name"] for s in job.get("steps") or []]
    r["spare"] = ("claim spare" in names) if names else None
    return r


def step_summary(runs):
    names = []
    for r in runs:
        for k in r.get("steps_ms", {}):
            if k not in names:
                names.append(k)
    return {k: bi.summary_ms([r["steps_ms"][k] for r in runs if k in r.get("steps_ms", {})]) for k in names}


def report(runs, extra=None):
    out = {
        "count": len(runs),
        "ready_ms": bi.summary_ms([r["ready_ms"] for r in runs]),
        "post_ms": bi.summary_ms([r["post_ms"] for r in runs]),
        "job_queue_ms": bi.summary_ms([r["job_queue_ms"] for r in runs if r.get("job_queue_ms") is not None]),
        "job_run_ms": bi.summary_ms([r["job_run_ms"] for r in runs if r.get("job_run_ms") is not None]),
        "steps_ms": step_summary(runs),
        # Only when the server says which creates claimed a spare (null: it does not).
        "from_spare": (sum(1 for r in runs if r["spare"] is True)
                       if any(r.get("spare") is not None for r in runs) else None),
        "jobs_failed": [r["name"] for r in runs if r.get("job_state") != "SUCCESS"],
        "runs": [{k: v for k, v in r.items() if k not in ("password", "url")} for r in runs],
    }
    out.update(extra or {})
    return out


def cmd_sequence(a):
    api = bi.Api(a.base, password=a.password)
    runs = []
    for i in range(a.count):
        r = bi.timed_create(api, f"{a.prefix}-{i:02d}", a.project, a.ca)
        runs.append(r)
        log(f"  {r['name']}: ready {r['ready_ms']:.1f} ms ({r['attempts']} attempts {r['errors']})")
    for r in runs:
        finish(api, r)
    print(json.dumps(report(runs), indent=1))


def cmd_burst(a):
    apis = [bi.Api(a.base, password=a.password) for _ in range(a.count)]
    for api in apis:
        api.prepare_connect()
    gate = threading.Barrier(a.count)
    runs, errors = [None] * a.count, []

    def one(i):
        gate.wait()
        try:
            runs[i] = bi.timed_create(apis[i], f"{a.prefix}-{i:02d}", a.project, a.ca)
        except Exception as e:  # reported, and the run counts as failed
            errors.append(str(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in runs if r is not None]
    for r in done:
        finish(apis[0], r)
    first = min(r["wall0"] for r in done)
    span = max(r["wall0"] + r["ready_ms"] / 1000 for r in done) - first
    for r in sorted(done, key=lambda r: r["ready_ms"]):
        log(f"  {r['name']}: ready {r['ready_ms']:.1f} ms spare={r.get('spare')}")
    print(json.dumps(report(done, {"all_ready_within_ms": span * 1000, "errors": errors}), indent=1))


def spare_pss_mb(data_dir, ids):
    """PSS of every process of the spares' postmasters (the spare pool's memory at rest)."""
    kids = bi.proc_children()
    total_kb = 0
    for sid in ids:
        pidfile = os.path.join(data_dir, "instances", sid, "pgdata", "postmaster.pid")
        try:
            pid = int(open(pidfile).readline())
        except (OSError, ValueError):
            continue
        for p in bi.tree(pid, kids):
            total_kb += (bi.rollup(p) or {}).get("Pss", 0)
    return total_kb / 1024


def cmd_pool(a):
    t0 = time.time()
    last, since = None, time.time()
    while time.time() - t0 < a.limit:
        rows = [(str(i), st) for i, st in bi.sysdb_rows(a.sysdb, "SELECT id, state FROM spares")]
        state = (sum(1 for _, s in rows if s == "ready"), sum(1 for _, s in rows if s != "ready"))
        if state != last:
            last, since = state, time.time()
        elif state[1] == 0 and time.time() - since >= a.steady:
            ids = [i for i, _ in rows]
            print(json.dumps({"ready": state[0], "settled_after_s": since - t0,
                              "pss_mb": spare_pss_mb(a.data_dir, ids)}))
            return
        time.sleep(0.1)
    raise SystemExit(f"the spare pool did not settle in {a.limit} s (last: {last})")


def cmd_phases(a):
    """The engine's own timing of each provisioning (its debug line `provisioned`), by kind:
    a claimed spare, a template copy made ahead taken, or a copy made on the spot (cold
    creates and the keeper's spares alike)."""
    by_kind = {"copy": [], "ahead": [], "claim": []}
    with open(a.log) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            fields = e.get("fields", {})
            if fields.get("message") == "provisioned":
                kind = ("claim" if not fields.get("copied")
                        else "ahead" if fields.get("made_ahead") else "copy")
                by_kind[kind].append(fields)
    out = {}
    for kind, rows in by_kind.items():
        if rows:
            keys = ("copy_ms", "stanza_ms", "start_ms", "owner_ms", "total_ms")
            out[kind] = {"count": len(rows), **{k: bi.summary_ms([float(r[k]) for r in rows if k in r]) for k in keys}}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base", required=True)
    common.add_argument("--password", required=True)
    for name, fn in (("sequence", cmd_sequence), ("burst", cmd_burst)):
        s = sub.add_parser(name, parents=[common])
        s.add_argument("--project", required=True)
        s.add_argument("--ca", required=True)
        s.add_argument("--count", type=int, default=10)
        s.add_argument("--prefix", required=True)
        s.set_defaults(fn=fn)
    s = sub.add_parser("phases")
    s.add_argument("--log", required=True)
    s.set_defaults(fn=cmd_phases)
    s = sub.add_parser("pool")
    s.add_argument("--sysdb", required=True)
    s.add_argument("--data-dir", required=True)
    s.add_argument("--steady", type=float, default=3)
    s.add_argument("--limit", type=float, default=300)
    s.set_defaults(fn=cmd_pool)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
