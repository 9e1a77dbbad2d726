#!/usr/bin/env python3
"""Key -> screen change of the real sagascope binary in a real terminal,
beside `less` in the same run.

Each program runs in its own session of a private tmux server (a real
pseudo-terminal, 160x45), watched by a tmux control-mode client (commands
over a pipe, no process per look). For every key: the pane is captured
(text and attributes: `capture-pane -e`, so a moved highlight counts), the
key is sent with `send-keys`, and each time the program writes to its
terminal (tmux's `%output`) the pane is captured again, until it differs.
The time from sending the key to the first differing capture is the
latency a user sees, measurement overhead included; `less` scrolling a
long file, measured the same way in the same rounds, is that overhead's
floor on this machine. Rounds alternate between the programs so a busy
moment hits all of them. (Polling `tmux capture-pane` as a new process
each time costs 5-10 ms a look on a busy machine: too coarse for a 16 ms
target.)

Targets: median within 10 ms of less, p99 under 16 ms.

  benches/tui_pty.py                       # demo store and 100,000 sagas
  benches/tui_pty.py --stores demo --rounds 4
  SAGASCOPE_BIN=target/debug/sagascope benches/tui_pty.py --sagas 20000

The demo store is made with `sagascope demo --no-tui` in a private home;
the big store with `sagascope dev seed` (5 snapshots a saga, 1 KB
contexts) under target/bench-data/tui-pty/ and reused by later runs. Uses
target/release/sagascope unless SAGASCOPE_BIN is set. `--json FILE` writes
the numbers. Needs tmux and less.
"""
import argparse
import json
import os
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKET = f"sagascope-pty-{os.getpid()}"
# Each key changes the screen: j/k move in whichever pane has the focus,
# Tab moves the focus, ? opens help and Escape closes it.
KEYS = ["j", "k", "Tab", "?", "Escape"]
TIMEOUT = 3.0


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True)


def capture(session):
    return tmux("capture-pane", "-p", "-e", "-t", session).stdout


def start(session, command, env=None):
    envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    line = f"env {envs} {command}" if envs else command
    out = tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", line)
    if out.returncode != 0:
        sys.exit(f"tmux new-session: {out.stderr.strip()}")


def wait_for(session, pred, what, limit=120.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        screen = tmux("capture-pane", "-p", "-t", session).stdout
        if pred(screen):
            return screen
        time.sleep(0.1)
    sys.exit(f"{what}: not on screen after {limit:.0f} s:\n{screen}")


class Control:
    """A tmux control-mode client on one session: commands and their
    answers over a pipe (no process per capture), and `%output`
    notifications the moment the program writes to its terminal."""

    def __init__(self, session):
        self.session = session
        self.proc = subprocess.Popen(
            ["tmux", "-L", SOCKET, "-C", "attach", "-t", session],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.output_seen = False
        self.command("display-message -p ready")

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    sys.exit(f"tmux control client for {self.session} ended")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def command(self, line):
        """Runs a command; returns its output lines."""
        self.proc.stdin.write(line.encode() + b"\n")
        out, inside = [], False
        deadline = time.perf_counter() + 10
        while True:
            l = self._line(deadline)
            if l is None:
                sys.exit(f"tmux did not answer {line!r}")
            if not inside:
                if l.startswith(b"%begin"):
                    inside, out = True, []
                elif l.startswith(b"%output"):
                    self.output_seen = True
                continue
            if l.startswith(b"%end") or l.startswith(b"%error"):
                # The answer to an earlier command (the attach) has flags 0.
                if l.split()[-1] == b"1":
                    return out
                inside = False
                continue
            out.append(l)

    def capture(self):
        return self.command(f"capture-pane -p -e -t {self.session}")

    def wait_output(self, deadline):
        """Waits for the program to write to its terminal."""
        while not self.output_seen:
            l = self._line(deadline)
            if l is None:
                return False
            if l.startswith(b"%output"):
                self.output_seen = True
        return True

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=5)


def measure(ctl, keys, gap):
    """Latencies (ms) of each key: send, then on each write the program
    makes, capture the screen until it differs. None: nothing changed."""
    out = []
    for key in keys:
        before = ctl.capture()
        ctl.output_seen = False
        t = time.perf_counter()
        ctl.command(f"send-keys -t {ctl.session} {key}")
        deadline = t + TIMEOUT
        latency = None
        while ctl.wait_output(deadline):
            ctl.output_seen = False
            if ctl.capture() != before:
                latency = (time.perf_counter() - t) * 1000
                break
        out.append(latency)
        time.sleep(gap)
    return out


def stats(xs):
    ok = sorted(x for x in xs if x is not None)
    if not ok:
        return {"n": 0, "unanswered": len(xs)}
    q = lambda p: ok[min(len(ok) - 1, int(round(p * (len(ok) - 1))))]
    return {
        "n": len(ok),
        "unanswered": len(xs) - len(ok),
        "median_ms": round(statistics.median(ok), 2),
        "p90_ms": round(q(0.90), 2),
        "p99_ms": round(q(0.99), 2),
        "max_ms": round(ok[-1], 2),
    }


def run(cmd, env):
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def private_home(path):
    return {
        "HOME": path,
        "XDG_CONFIG_HOME": os.path.join(path, "config"),
        "XDG_DATA_HOME": os.path.join(path, "data"),
    }


def demo_store(binary, work):
    home = os.path.join(work, "demo-home")
    os.makedirs(home, exist_ok=True)
    env = private_home(home)
    run([binary, "demo", "--no-tui"], env)
    return None, env


def big_store(binary, sagas):
    data = os.path.join(ROOT, "target", "bench-data", "tui-pty")
    os.makedirs(data, exist_ok=True)
    db = os.path.join(data, f"sagas-{sagas}x5.db")
    url = f"sqlite://{db}"
    home = os.path.join(data, "home")
    os.makedirs(home, exist_ok=True)
    env = private_home(home)
    if not os.path.exists(db + ".done"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        print(f"seeding {sagas} sagas into {db} (once)…", file=sys.stderr)
        run([binary, "--store", url, "dev", "seed", "--sagas", str(sagas), "--snapshots", "5",
             "--context-bytes", "1024", "--start", "2026-01-15T09:00:00Z"], env)
        open(db + ".done", "w").close()
    return url, env


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", default="demo,big", help="demo, big or both (comma-separated)")
    p.add_argument("--sagas", type=int, default=100_000, help="sagas in the big store")
    p.add_argument("--rounds", type=int, default=8, help="rounds; each sends every key --repeat times")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--gap", type=float, default=0.12, help="seconds between keys")
    p.add_argument("--burst-gap", type=float, default=0.05, help="gap of the 50 ms-apart series")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()

    binary = os.environ.get("SAGASCOPE_BIN", os.path.join(ROOT, "target", "release", "sagascope"))
    if not os.path.exists(binary):
        sys.exit(f"{binary} does not exist: cargo build --release, or set SAGASCOPE_BIN")
    binary = os.path.abspath(binary)
    work = tempfile.mkdtemp(prefix="sagascope-pty-")
    keys = KEYS * a.repeat

    targets = {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, dir=work) as f:
        f.write("\n".join(map(str, range(200_000))))
    start("less", f"less {shlex.quote(f.name)}")
    wait_for("less", lambda s: "0" in s, "less")
    targets["less"] = ["j"] * len(keys)
    try:
        for name in a.stores.split(","):
            if name == "demo":
                url, env = demo_store(binary, work)
                label = "sagascope, demo store"
            elif name == "big":
                url, env = big_store(binary, a.sagas)
                label = f"sagascope, {a.sagas:,} sagas"
            else:
                sys.exit(f"unknown store {name!r}: demo or big")
            cmd = shlex.quote(binary) + (f" --store {shlex.quote(url)}" if url else "") + " tui"
            start(name, cmd, env)
            wait_for(name, lambda s: " Sagas " in s and "connected" in s and "Context" in s,
                     f"{label}: the first screen")
            time.sleep(1.0)
            targets[name] = keys
            targets[name + ":label"] = label
        results = {k: [] for k in targets if not k.endswith(":label")}
        bursts = {k: [] for k in results}
        ctls = {name: Control(name) for name in results}
        for r in range(a.rounds):
            for name in results:
                results[name] += measure(ctls[name], targets[name], a.gap)
            for name in results:
                bursts[name] += measure(ctls[name], targets[name][: len(KEYS) * 2], a.burst_gap)
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
        for c in ctls.values():
            c.close()
    finally:
        tmux("kill-server")
        shutil.rmtree(work, ignore_errors=True)

    out = {"binary": binary, "keys": KEYS, "gap_s": a.gap, "programs": {}}
    floor = stats(results["less"])
    print(f"{'program':<28} {'n':>4} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}  unanswered")
    for name in results:
        label = targets.get(name + ":label", "less (floor)")
        for series, data in (("", results[name]), (", keys 50 ms apart", bursts[name])):
            s = stats(data)
            out["programs"][label + series] = s
            if s["n"] == 0:
                print(f"{label + series:<28} nothing answered")
                continue
            print(f"{label + series:<28} {s['n']:>4} {s['median_ms']:>6.1f}ms {s['p90_ms']:>6.1f}ms "
                  f"{s['p99_ms']:>6.1f}ms {s['max_ms']:>6.1f}ms  {s['unanswered']}")
    verdicts = []
    for name in results:
        if name == "less":
            continue
        s = out["programs"][targets[name + ":label"]]
        ok = s["n"] > 0 and s["unanswered"] == 0 and s["median_ms"] <= floor["median_ms"] + 10 and s["p99_ms"] < 16
        verdicts.append(ok)
        print(f"{targets[name + ':label']}: {'meets' if ok else 'MISSES'} the target "
              f"(median within 10 ms of less's {floor['median_ms']:.1f} ms, p99 < 16 ms)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
