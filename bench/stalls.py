#!/usr/bin/env python3
"""What the slow requests of a `bench/clearsessions.sh` run waited for.

Sets the load generator's samples of the counter route (writes) beside the trace events
that the sweep and the server logged (`RUST_LOG=sesame::store::sqlite=trace`: each batch of
the sweep, each of its checkpoints, each commit of the server's writer), by wall-clock time,
and says for each slow write what was going on while it waited. `bench/clearsessions.sh`
runs it with `TRACE=1`.

Usage: stalls.py WRITE_CSV SWEEP_LOG SERVER_LOG T0_US T1_US SLOW_US
"""
import re
import sys
from bisect import bisect_left
from collections import Counter, namedtuple
from statistics import median

# `target: message field=value ...`, as tracing-subscriber's fmt layer prints it.
EVENT = re.compile(r"\S+: (batch|checkpoint|locked checkpoint|commit) (\w+=.*)$")
FIELD = re.compile(r"(\w+)=(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def events(path, source):
    """(source, kind, start_us, end_us, fields) of each trace event in a log."""
    out = []
    for line in open(path, errors="replace"):
        line = ANSI.sub("", line)
        if "TRACE" not in line:
            continue
        m = EVENT.search(line)
        if not m:
            continue
        fields = {k: int(v) for k, v in FIELD.findall(m.group(2))}
        if "at_us" not in fields:
            continue
        took = fields.get("took_us", fields.get("wait_us", 0) + fields.get("held_us", 0))
        out.append((source, m.group(1), fields["at_us"], fields["at_us"] + took, fields))
    return out


# Windows of the same length as a slow write are moved by multiples of this (µs): a period
# that no batch rhythm shares.
SHIFT_US = 10_007


class Timeline:
    """Events sorted by start, for many overlap queries (thousands of moved windows)."""

    def __init__(self, evs):
        self.evs = sorted(evs, key=lambda e: e[2])
        self.starts = [e[2] for e in self.evs]
        self.longest = max((e[3] - e[2] for e in self.evs), default=0)

    def overlapping(self, start, end):
        """The events under way at some time in [start, end), in order of start."""
        i = bisect_left(self.starts, start - self.longest)
        out = []
        for e in self.evs[i:]:
            if e[2] >= end:
                break
            if e[3] > start:
                out.append(e)
        return out


def main():
    write_csv, sweep_log, server_log = sys.argv[1:4]
    t0, t1, slow = (int(x) for x in sys.argv[4:7])
    samples = [tuple(map(int, l.split(","))) for l in open(write_csv)]
    during = [(at, lat) for at, lat, _ in samples if t0 <= at <= t1]
    sweep, server = events(sweep_log, "sweep"), events(server_log, "server")
    batches = [e for e in sweep if e[1] == "batch"]
    commits = [e for e in server if e[1] == "commit"]
    timeline = Timeline(sweep + server)

    def hist(xs, name):
        bounds = [1_000, 2_000, 5_000, 10_000, 20_000]
        counts = [sum(1 for x in xs if x >= b) for b in bounds]
        print(f"{name}: {len(xs)}; " + ", ".join(f">= {b // 1000} ms: {c}" for b, c in zip(bounds, counts))
              + (f"; longest {max(xs) / 1000:.1f} ms" if xs else ""))

    hist([e[3] - e[2] for e in batches], "sweep batches")
    hist([e[3] - e[2] for e in sweep if e[1] == "checkpoint"], "sweep checkpoints")
    hist([e[4]["held_us"] for e in sweep + server if e[1] == "locked checkpoint"], "locked checkpoints (lock held)")
    during_commits = [e for e in commits if t0 <= e[2] <= t1]
    hist([e[4]["wait_us"] for e in during_commits], "server commits during the sweep (wait for the lock)")
    hist([e[3] - e[2] - e[4]["wait_us"] for e in during_commits], "server commits during the sweep (after the lock)")

    # Each slow write: the longest thing under way while it waited, by kind.
    slow_ones = [(at, lat) for at, lat in during if lat >= slow]
    blame = Counter()
    unblamed = []
    for at, lat in slow_ones:
        over = timeline.overlapping(at, at + lat)
        long_batch = [e for e in over if e[1] == "batch" and e[3] - e[2] >= 2_000]
        waited = [e for e in over if e[1] == "commit" and e[4]["wait_us"] >= 2_000]
        slow_commit = [e for e in over if e[1] == "commit" and e[3] - e[2] - e[4]["wait_us"] >= 2_000]
        if long_batch:
            blame["a sweep batch of >= 2 ms"] += 1
        elif waited:
            blame["a server commit waited >= 2 ms for the lock (no batch that long)"] += 1
        elif slow_commit:
            blame["a server commit took >= 2 ms once it had the lock"] += 1
        elif any(e[1] in ("checkpoint", "locked checkpoint") for e in over):
            blame["a checkpoint, nothing longer"] += 1
        else:
            blame["none of these (no batch, lock wait or commit of >= 2 ms, no checkpoint)"] += 1
            unblamed.append((at, lat))
    print(f"writes during the sweep: {len(during)}; slower than {slow / 1000:.1f} ms: {len(slow_ones)}")
    for reason, n in blame.most_common():
        print(f"  {n:5}  {reason}")

    # "None of these" is not "nothing of the sweep's": a slow write can meet shorter batches.
    # Whether it met more of the sweep than chance would have it shows against windows of the
    # same lengths elsewhere in the sweep: each slow write's window moved by k * SHIFT_US
    # (k = -25..25, not 0), kept where it stays in the sweep.
    Met = namedtuple("Met", "batches share longest waited")

    def met(at, lat):
        over = timeline.overlapping(at, at + lat)
        met_batches = [e for e in over if e[1] == "batch"]
        held = sum(min(e[3], at + lat) - max(e[2], at) for e in met_batches)
        return Met(len(met_batches), held / max(1, lat),
                   max((e[3] - e[2] for e in met_batches), default=0),
                   any(e[1] == "commit" and e[4]["wait_us"] >= 200 for e in over))

    def describe(windows):
        seen = [met(at, lat) for at, lat in windows]
        if not seen:
            return "none"
        return (f"{sum(1 for m in seen if m.batches) / len(seen):.0%} met a batch,"
                f" {median(m.batches for m in seen):.0f} batches at the median, the longest one met"
                f" {median(m.longest for m in seen) / 1000:.2f} ms at the median,"
                f" a batch held the lock a median {median(m.share for m in seen):.0%} of the time;"
                f" {sum(1 for m in seen if m.waited) / len(seen):.0%} met a server commit that"
                " waited >= 0.2 ms")

    lock_share = sum(e[3] - e[2] for e in batches) / max(1, t1 - t0)
    print(f"the sweep's batches held the lock {lock_share:.0%} of the sweep's time;"
          f" its batches took {median(e[3] - e[2] for e in batches) / 1000:.2f} ms at the median")
    if unblamed:
        moved = ((at + k * SHIFT_US, lat) for at, lat in unblamed for k in range(-25, 26) if k)
        shifted = [(at, lat) for at, lat in moved if t0 <= at and at + lat <= t1]
        print(f"  the {len(unblamed)} \"none of these\": "
              + describe(unblamed))
        print(f"  {len(shifted)} windows of the same lengths elsewhere in the sweep: "
              + describe(shifted))

    # The worst moments: runs of slow writes, and what overlapped them.
    windows = []
    for at, lat in sorted(slow_ones):
        if windows and at <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], at + lat)
            windows[-1][2] += 1
        else:
            windows.append([at, at + lat, 1])
    windows.sort(key=lambda w: w[1] - w[0], reverse=True)
    print("longest stalls (from the first slow write's send to the last one's answer):")
    for start, end, n in windows[:8]:
        over = timeline.overlapping(start, end)
        # The sweep's kinds first, as they were listed before the timeline sorted by start.
        kinds = Counter(e[0] + " " + e[1] for e in sorted(over, key=lambda e: e[0] != "sweep"))
        longest = sorted(over, key=lambda e: e[3] - e[2], reverse=True)[:3]
        desc = "; ".join(f"{e[0]} {e[1]} {(e[3] - e[2]) / 1000:.1f} ms" for e in longest)
        print(f"  +{(start - t0) / 1e6:6.3f} s  {(end - start) / 1000:6.1f} ms  {n:4} writes | "
              f"{dict(kinds)} | longest: {desc}")


if __name__ == "__main__":
    main()
