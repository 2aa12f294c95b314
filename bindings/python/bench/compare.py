#!/usr/bin/env python3
"""Runs produce_bench.py for kp and confluent-kafka alternately (one warm-up
run each, then kp, confluent, kp, confluent, ...) and prints each run, the
medians and the ratios kp / confluent-kafka (records/s: > 1 = kp faster; CPU per
record and peak RSS: < 1 = kp cheaper). Every other argument goes to
produce_bench.py unchanged, e.g. W2 on the 3-broker test cluster:

    python3 bindings/python/bench/compare.py --reps 5 -- \\
        --bootstrap $KP_BOOTSTRAP --topic pyw2 --num-records 1000000 \\
        --key-count 10000 --acks all --idempotence true --compression lz4

Run it with the interpreter of a venv where `pip install ./bindings/python`
and confluent-kafka are importable. Exit status 1 if any run failed.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "produce_bench.py")
LINE = re.compile(r"^(\w+): (\d+) records sent, ([\d.]+) records/sec .*?, ([\d.]+) CPU s per million records, "
                  r"peak RSS ([\d.]+) MiB")


def run(client, args):
    p = subprocess.run([sys.executable, BENCH, "--client", client] + args, text=True, capture_output=True)
    m = next((LINE.match(line) for line in p.stdout.splitlines() if LINE.match(line)), None)
    if p.returncode != 0 or not m:
        print(f"  {client}: FAILED (exit {p.returncode}) {p.stdout.strip()} {p.stderr.strip()[-500:]}", flush=True)
        return None
    print(f"  {p.stdout.strip()}", flush=True)
    return dict(rps=float(m.group(3)), cpu=float(m.group(4)), rss=float(m.group(5)))


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--reps", type=int, default=5)
    a.add_argument("rest", nargs=argparse.REMAINDER, help="-- produce_bench.py arguments")
    o = a.parse_args()
    args = o.rest[1:] if o.rest[:1] == ["--"] else o.rest
    clients = ("kp", "confluent")
    print("warm-up (not counted)", flush=True)
    for c in clients:
        run(c, args)
    results = {c: [] for c in clients}
    failed = 0
    for rep in range(1, o.reps + 1):
        print(f"rep {rep}", flush=True)
        for c in clients:
            r = run(c, args)
            if r:
                results[c].append(r)
            else:
                failed += 1
    med = {c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "cpu", "rss")}
           for c, rs in results.items() if rs}
    print()
    print("| client | runs | records/s (median; min-max) | CPU s / M records | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for c, rs in results.items():
        if rs:
            m = med[c]
            print(f"| {c} | {len(rs)} | {m['rps']:,.0f} ({min(r['rps'] for r in rs):,.0f}-"
                  f"{max(r['rps'] for r in rs):,.0f}) | {m['cpu']:.3f} | {m['rss']:.1f} |")
    if len(med) == 2:
        k, c = med["kp"], med["confluent"]
        print(f"\nkp / confluent-kafka: records/s {k['rps'] / c['rps']:.2f}x, CPU per record "
              f"{k['cpu'] / c['cpu']:.2f}x, peak RSS {k['rss'] / c['rss']:.2f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
