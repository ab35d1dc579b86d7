#!/usr/bin/env python3
"""The verdict of the device-life soak (.ci/soak): what the caller saw for each reading (the
driver's results, examples/soak.rs) against what the servers read (their access logs: the
ledger). Prints why it fails, then ends with exactly

    soak: sent N delivered N reported N lost N duplicates N mismatched N reconnects N resets N

and exits 1 on failure.

usage: soak-ledger.py RESULTS.jsonl NGINX_LEDGER APACHE_LEDGER DEVICE=PORT...
       soak-ledger.py --self-test   (the verdict on made-up runs: one that passes, and one
                                     for each way to fail)

- sent: readings the driver took; delivered: a 2xx whose echo carries the reading's sequence
  number; reported: the client returned an error for it (or a non-2xx response that the ledger
  shows the server gave to that very request); mismatched: a 2xx echoing another body, or a
  response the server never gave to that request.
- lost: neither a 2xx in the ledger nor reported to the caller.
- duplicates: sequence numbers with more than one 2xx in the ledger.
- reconnects: connections the devices opened (the first of each included), counted by the
  driver's connectors.
- resets: requests the server reset on purpose (444 in nginx's ledger).
Pass: lost, duplicates and mismatched 0, and the reported readings are exactly the resets.
"""
import collections
import contextlib
import io
import json
import os
import re
import sys
import tempfile

KEEPALIVE_MS = 500
# How long after the reload command a server may still close the connections it left idle.
RELOAD_CLOSE_MS = 250

LINE = re.compile(
    r'^(?P<t>[\d.]+) (?P<server>\S+) (?P<port>\d+) (?P<client_port>\d+) (?P<conn>\S+) '
    r'(?P<nth>\d+) "(?P<tls>[^"]*)" "(?P<request>[^"]*)" (?P<status>\d+)$'
)


def main():
    results_path, nginx_log, apache_log, *ports = sys.argv[1:]
    device_of_port = {}
    for p in ports:
        name, port = p.split("=")
        device_of_port[port] = name

    # --- the ledger ---------------------------------------------------------------------
    ledger = collections.defaultdict(list)  # seq -> entries
    unparsed = []
    for path in (nginx_log, apache_log):
        try:
            lines = open(path).read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            m = LINE.match(line)
            s = m and re.search(r"[?&]seq=(\d+)", m["request"])
            if not s:
                unparsed.append(line)
                continue
            e = m.groupdict()
            e["status"] = int(e["status"])
            e["device"] = device_of_port.get(e["port"], "?")
            ledger[int(s[1])].append(e)

    # --- the caller's side ----------------------------------------------------------------
    results, events = {}, []
    for line in open(results_path):
        r = json.loads(line)
        if "event" in r:
            events.append(r)
        else:
            results[r["seq"]] = r
    reloads = [e for e in events if e["event"] == "reload"]
    end = [e for e in events if e["event"] == "end"]
    unsent = sum(e["count"] for e in events if e["event"] == "unsent")
    connect_failed = [e for e in events if e["event"] == "connect_failed"]

    def twoxx(seq):
        return [e for e in ledger.get(seq, []) if 200 <= e["status"] < 300]

    def resets_of(seq):
        return [e for e in ledger.get(seq, []) if e["status"] == 444]

    delivered, reported, mismatched, lost = [], [], [], []
    for seq, r in sorted(results.items()):
        o = r["outcome"]
        if o == "delivered":
            delivered.append(seq)
        elif o == "reported":
            reported.append(seq)
        elif o == "status":
            if any(e["status"] == r["status"] for e in ledger.get(seq, [])):
                reported.append(seq)
                r["error"] = f"status {r['status']}"
                r["error_value"] = f"Status({r['status']})"
            else:
                mismatched.append(seq)
        else:
            mismatched.append(seq)
        if not twoxx(seq) and o not in ("reported", "status"):
            lost.append(seq)
    duplicates = sorted(s for s in ledger if len(twoxx(s)) > 1)
    not_sent = sorted(s for s in ledger if s not in results)
    resets = sorted(s for s in ledger if resets_of(s))
    reconnects = end[0]["connections"] if end else 0
    reported_not_reset = [s for s in reported if not resets_of(s)]
    reset_not_reported = [s for s in resets if s not in reported]
    says_unprocessed_but_read = [
        s for s in reported
        if results[s].get("may_have_been_processed") is False and ledger.get(s)
    ]

    # --- why each failure happened --------------------------------------------------------
    reload_ms = reloads[0]["t_ms"] if reloads else None

    def across_reload(r):
        # Idle at some moment between the reload's start and a little after its command ended
        # (nginx's old worker closes its idle connections once the new one runs: up to ~130 ms
        # after `nginx -s reload` began, measured here). The device that runs the reload does
        # so right after a read: allow for the milliseconds rounded off on both sides.
        if reload_ms is None or not r.get("written"):
            return False
        reload_end = reload_ms + reloads[0]["took_ms"] + RELOAD_CLOSE_MS
        return r["sent_ms"] - r["idle_ms"] <= reload_end and reload_ms <= r["sent_ms"] + 5

    def cause(seq):
        r = results[seq]
        if resets_of(seq):
            return "reset on purpose (444 in the ledger)"
        if twoxx(seq):
            return "the server answered 2xx (in the ledger), the caller got an error"
        if ledger.get(seq):
            return f"the server answered {ledger[seq][0]['status']}"
        if not r.get("written"):
            return "never written (no connection)"
        idle, sent = r["idle_ms"], r["sent_ms"]
        if r["nth"] == 1:
            return "not in the ledger: written first on a new connection"
        if idle >= KEEPALIVE_MS:
            return f"not in the ledger: written into a kept connection idle >= {KEEPALIVE_MS} ms"
        if across_reload(r):
            return "not in the ledger: written into a kept connection idle across the reload"
        return f"not in the ledger: written into a kept connection idle < {KEEPALIVE_MS} ms"

    def where(seq):
        r = results[seq]
        if not r.get("written"):
            return f"{r['device']}, not written"
        return (f"{r['device']} connection {r['conn']} (port {r['client_port']}) request "
                f"{r['nth']}, idle {r['idle_ms']} ms, at {r['sent_ms'] / 1000:.1f} s")

    def ledger_says(seq):
        es = ledger.get(seq, [])
        if not es:
            return "ledger: nothing"
        return "ledger: " + "; ".join(
            f"{e['status']} (port {e['client_port']} request {e['nth']})" for e in es)

    failures = reported + mismatched + lost
    if failures:
        print(f"soak: {len(reported)} reported, by error:")
        by_error = collections.defaultdict(list)
        for s in reported:
            by_error[(results[s].get("error_value", "?"), results[s].get("error", "?"))].append(s)
        for (value, text), seqs in sorted(by_error.items(), key=lambda kv: -len(kv[1])):
            per = collections.Counter(results[s]["device"] for s in seqs)
            print(f"  {len(seqs):>3}  {value}: \"{text}\"  ["
                  + ", ".join(f"{d} {n}" for d, n in sorted(per.items())) + "]")
        print("soak: failures by server:")
        for device in sorted({r["device"] for r in results.values()}):
            mine = [s for s in results if results[s]["device"] == device]
            bad = [s for s in failures if results[s]["device"] == device]
            print(f"  {device:<10} {len(bad):>3} of {len(mine)}")
        print("soak: failures by cause (client side joined with the ledger):")
        by_cause = collections.defaultdict(list)
        for s in sorted(set(failures)):
            by_cause[cause(s)].append(s)
        for c, seqs in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
            idles = [results[s]["idle_ms"] for s in seqs if results[s].get("written")]
            span = f" (idle {min(idles)}-{max(idles)} ms)" if idles else ""
            per = collections.Counter(results[s]["device"] for s in seqs)
            print(f"  {len(seqs):>3}  {c}{span}  ["
                  + ", ".join(f"{d} {n}" for d, n in sorted(per.items())) + "]")
        ends = collections.Counter(
            (results[s]["device"], results[s].get("stream_end") or "-") for s in reported)
        print("soak: how the failed connections ended, as the stream saw it:")
        for (device, how), n in sorted(ends.items()):
            print(f"  {n:>3}  {device}: {how}")

    why = []
    if lost:
        why.append(f"{len(lost)} lost (neither a 2xx in the ledger nor reported to the caller)")
        for s in lost:
            print(f"  lost {s}: {where(s)}; outcome {results[s]['outcome']}; {ledger_says(s)}")
    if duplicates:
        why.append(f"{len(duplicates)} sequence numbers with more than one 2xx in the ledger")
        for s in duplicates:
            print(f"  duplicate {s}: {ledger_says(s)}")
    if mismatched:
        why.append(f"{len(mismatched)} responses given to the wrong request")
        for s in mismatched:
            r = results[s]
            print(f"  mismatched {s}: {where(s)}; status {r.get('status')} echoed {r.get('echoed')} "
                  f"body {r.get('body')!r}; {ledger_says(s)}")
    if reported_not_reset:
        why.append(f"{len(reported_not_reset)} reported failures that the server did not reset on "
                   "purpose (an idle close or a reload must cost no reading)")
        print("  (each: where it was written; what the ledger has; the error, whose text is in the "
              "table above; whether it says the server may have processed the request)")
        for s in reported_not_reset:
            r = results[s]
            print(f"  reported {s}: {where(s)}; {ledger_says(s)}; {r.get('error_value')}; "
                  f"may have been processed: {r.get('may_have_been_processed')}")
    if reset_not_reported:
        why.append(f"{len(reset_not_reported)} requests reset on purpose but not reported "
                   "(resent, or answered)")
        for s in reset_not_reported:
            print(f"  reset {s} not reported: {where(s) if s in results else 'not sent'}; "
                  f"outcome {results.get(s, {}).get('outcome')}; {ledger_says(s)}")
    if says_unprocessed_but_read:
        why.append(f"{len(says_unprocessed_but_read)} errors saying the request was not processed, "
                   "for requests the server had read")
        for s in says_unprocessed_but_read:
            print(f"  {s}: {where(s)}; {ledger_says(s)}; error \"{results[s].get('error')}\"")
    if not_sent:
        why.append(f"{len(not_sent)} sequence numbers in the ledger that the driver never took")
    if unsent:
        why.append(f"{unsent} readings not sent (time budget, or connections that did not open)")
    if not reloads or not all(r["ok"] for r in reloads):
        why.append("the midpoint reload did not run")
    if not end:
        why.append("the driver did not finish")
    if len(results) < 200:
        why.append(f"only {len(results)} readings sent (at least 200)")
    if connect_failed:
        print(f"soak: {len(connect_failed)} connections failed to open between readings: "
              + "; ".join(sorted({e["error"] for e in connect_failed})))
    if unparsed:
        print(f"soak: {len(unparsed)} ledger lines without a sequence number, e.g. {unparsed[0]!r}")

    # What each server did with a kept connection after an idle time: the longest idle a
    # delivered reading had, the shortest one written into a connection already closed.
    for device in sorted({r["device"] for r in results.values()}):
        kept = [r for r in results.values() if r["device"] == device and r.get("written") and r["nth"] > 1]
        ok = [r["idle_ms"] for r in kept if r["outcome"] == "delivered"]
        gone = [r["idle_ms"] for r in kept
                if r["seq"] in failures and not ledger.get(r["seq"]) and not across_reload(r)]
        print(f"soak: {device}: on a kept connection, delivered after up to "
              f"{max(ok) if ok else '-'} ms idle; never read by the server after "
              f"{min(gone) if gone else '-'} ms idle or more ({len(gone)}; the reload aside)")
    for rl in reloads:
        probe = rl.get("probe")
        if probe in results:
            r = results[probe]
            what = (f"{r['outcome']}" if r["outcome"] != "reported"
                    else f"reported: {r.get('error_value')}")
            print(f"soak: the reload ran {rl['took_ms']} ms at {rl['t_ms'] / 1000:.1f} s; the reading "
                  f"after it on {rl['device']}: {probe}, {where(probe)}: {what}; {ledger_says(probe)}")
    conns = collections.defaultdict(set)
    for es in ledger.values():
        for e in es:
            conns[e["device"]].add(e["client_port"])
    print("soak: the ledger saw " + ", ".join(
        f"{d} {len(p)} connections" for d, p in sorted(conns.items())))
    for w in why:
        print(f"soak: FAIL: {w}")
    print(f"soak: sent {len(results)} delivered {len(delivered)} reported {len(reported)} "
          f"lost {len(lost)} duplicates {len(duplicates)} mismatched {len(mismatched)} "
          f"reconnects {reconnects} resets {len(resets)}")
    return 1 if why else 0


def self_test():
    """Made-up runs of 240 readings, 8 of them reset on purpose; the verdict must pass the
    clean one and fail each broken one, for the reason given."""

    def run(spoil=None):
        results, ledger = [], []
        t = 1796660000.0
        for device, port, base in (("nginx-tls", 1, 1000), ("nginx-tcp", 2, 2000), ("apache-tls", 3, 3000)):
            for i in range(1, 81):
                seq, t = base + i, t + 0.5
                reset = device != "apache-tls" and i % 20 == 7
                r = {"seq": seq, "device": device, "written": True, "conn": i, "client_port": 40000 + seq,
                     "nth": 1, "idle_ms": 0, "sent_ms": 0, "outcome": "delivered", "status": 200, "echoed": seq}
                status = 200
                if reset:
                    r = dict(r, outcome="reported", error="reset", error_value="Reset",
                             may_have_been_processed=True)
                    status = 444
                r, status, extra = spoil(r, status) if spoil else (r, status, [])
                results.append(r)
                for st in ([status] if status else []) + extra:
                    ledger.append(f'{t:.3f} {device.split("-")[0]} {port} {40000 + seq} {i} 1 "-" '
                                  f'"POST /soak?seq={seq} HTTP/1.1" {st}')
        results += [{"event": "reload", "t_ms": 1, "took_ms": 1, "ok": True, "device": "nginx-tls",
                     "probe": 0}, {"event": "end", "t_ms": 2, "connections": 240}]
        with tempfile.TemporaryDirectory() as d:
            paths = [os.path.join(d, n) for n in ("results", "ledger", "none")]
            open(paths[0], "w").write("".join(json.dumps(r) + "\n" for r in results))
            open(paths[1], "w").write("\n".join(ledger) + "\n")
            out = io.StringIO()
            sys.argv[1:] = paths + ["nginx-tls=1", "nginx-tcp=2", "apache-tls=3"]
            with contextlib.redirect_stdout(out):
                code = main()
        return code, out.getvalue().splitlines()

    def one(seq, change):
        return lambda r, status: change(r, status) if r["seq"] == seq else (r, status, [])

    cases = [
        ("clean", None, 0, "sent 240 delivered 232 reported 8 lost 0 duplicates 0 mismatched 0 "
         "reconnects 240 resets 8"),
        ("lost: delivered per the caller, the ledger has a 500", one(3005, lambda r, s: (r, 500, [])), 1,
         "lost 1"),
        ("lost: delivered per the caller, not in the ledger", one(3005, lambda r, s: (r, None, [])), 1,
         "lost 1"),
        ("duplicate", one(3005, lambda r, s: (r, s, [200])), 1, "duplicates 1"),
        ("mismatched echo", one(3005, lambda r, s: (dict(r, outcome="mismatched", echoed=3004), s, [])), 1,
         "mismatched 1"),
        ("a status the server never gave", one(3005, lambda r, s: (dict(r, outcome="status", status=408), s, [])),
         1, "mismatched 1"),
        ("reported, not reset", one(3005, lambda r, s: (dict(r, outcome="reported", error="x", error_value="X"),
                                                          None, [])), 1, "reported failures that the server did not"),
        ("reset, resent, delivered", one(1007, lambda r, s: (dict(r, outcome="delivered"), 444, [200])), 1,
         "reset on purpose but not reported"),
        ("says not processed, but read", one(1007, lambda r, s: (dict(r, may_have_been_processed=False), s, [])),
         1, "errors saying the request was not processed"),
    ]
    failed = 0
    for name, spoil, want_code, want in cases:
        code, lines = run(spoil)
        ok = code == want_code and lines[-1].startswith("soak: sent ") and (
            lines[-1] == "soak: " + want if spoil is None else any(want in line for line in lines))
        if not ok:
            failed += 1
            print(f"FAIL {name}: exit {code}, want {want_code} and a line with {want!r}:")
            print("\n".join("    " + line for line in lines))
        else:
            print(f"ok {name}")
    print(f"soak-ledger self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
