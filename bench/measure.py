"""Whole-process figures for bench/run.sh: ims-token against a fake IMS on
127.0.0.1 (HTTP and HTTPS), the static binary, a cached run, and the
openssl + curl shell baseline.

    python3 bench/measure.py --helper PATH --bin PATH [--static-bin PATH] [--runs 30] [--cache-runs 50]

With valgrind on the PATH it also counts instructions (callgrind, which is
repeatable on a busy machine, unlike wall times) of a cache hit and of
fetches with and without --ca-file; without it those rows say so.

Each run goes through the rusage_exec helper (bench/rusage_exec.c), which
forks, execs, and reports wall time (fork to wait4) and ru_maxrss. Python's
own os.wait4 would report at least the interpreter's peak RSS: Linux carries
the parent's high-water mark across exec into the child's ru_maxrss.

Prints one `section|metric|value|target` row per figure on stdout, progress
on stderr. Asserts nothing about speed; exits 1 only if a run fails or
prints the wrong token. Every loop is bounded; every run has a timeout.
"""

import argparse
import os
import statistics
import subprocess
import sys
import shutil
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_ims import FakeIms  # noqa: E402

CREDS = "tests/fixtures/service-credentials.sample.json"
CA = "tests/fixtures/tls/ca.pem"
CERT = "tests/fixtures/tls/server.pem"
KEY = "tests/fixtures/tls/server.key"
WARMUPS = 3
RUN_TIMEOUT = 30  # seconds per run: SIGALRM in the child, then our own kill
EXPECTED = "bench-token"


class RunFailed(Exception):
    pass


def child_env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "*"  # belt and braces: loopback only
    env.pop("IMS_CREDENTIALS", None)
    return env


def run_once(helper, argv, env, expected=EXPECTED):
    """Runs argv once; returns (wall_ms, maxrss_kib)."""
    proc = subprocess.run(
        [helper, str(RUN_TIMEOUT)] + argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT + 10,
    )
    lines = proc.stdout.rstrip("\n").split("\n")
    last = lines[-1] if lines else ""
    if proc.returncode != 0 or not last.startswith("@@rusage "):
        raise RunFailed(f"helper failed ({proc.returncode}): {proc.stderr.strip()}")
    fields = dict(item.split("=", 1) for item in last.split()[1:])
    output = "\n".join(lines[:-1]).strip()
    status = int(fields["status"])
    if status != 0 or output != expected:
        raise RunFailed(
            f"{' '.join(argv)}\n  exit {status}, stdout {output!r}, stderr {proc.stderr.strip()!r}"
        )
    return int(fields["wall_ns"]) / 1e6, int(fields["maxrss_kib"])


def series(helper, argv, env, runs, warmups=WARMUPS):
    for _ in range(warmups):
        run_once(helper, argv, env)
    walls, rss = [], []
    for _ in range(runs):
        wall, kib = run_once(helper, argv, env)
        walls.append(wall)
        rss.append(kib)
    return walls, rss


def callgrind(argv, env, tmp, want_status=0):
    """Instructions executed by argv under callgrind (None without valgrind)."""
    if not shutil.which("valgrind"):
        return None
    out = os.path.join(tmp, "callgrind.out")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if proc.returncode != want_status:
        raise RunFailed(f"callgrind {' '.join(argv)}: exit {proc.returncode}: {proc.stderr[-400:]}")
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RunFailed(f"no instruction total in {out}")


def millions(n):
    return "n/a (no valgrind)" if n is None else f"{n / 1e6:.2f}"


def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]


def mib(kib):
    return kib / 1024


class Rows:
    def __init__(self):
        self.rows = []

    def add(self, section, metric, value, target=""):
        self.rows.append((section, metric, value, target))
        print(f"{section}|{metric}|{value}|{target}", flush=True)

    def timing(self, section, walls, rss, wall_target="", rss_target="", extra=""):
        self.add(section, "wall median ms", f"{statistics.median(walls):.2f}", wall_target)
        self.add(section, "wall p90 ms", f"{p90(walls):.2f}")
        self.add(section, "peak RSS max MiB", f"{mib(max(rss)):.2f}", rss_target)
        if extra:
            self.add(section, "note", extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helper", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--static-bin")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--cache-runs", type=int, default=50)
    ap.add_argument("--version", default="0.1.0", help="what `--version` prints after `ims-token `")
    args = ap.parse_args()
    runs = max(1, min(args.runs, 10_000))
    cache_runs = max(1, min(args.cache_runs, 10_000))
    env = child_env()
    out = Rows()
    here = os.path.dirname(os.path.abspath(__file__))

    def log(msg):
        print(f"  measure: {msg}", file=sys.stderr, flush=True)

    http = FakeIms().start()
    https = FakeIms((CERT, KEY)).start()
    try:
        with tempfile.TemporaryDirectory(prefix="ims-token-bench.") as tmp:
            # Floor: what the helper itself costs for a do-nothing program.
            log("spawn floor (/bin/true)")
            walls, rss = [], []
            for _ in range(runs):
                proc = subprocess.run(
                    [args.helper, "5", "true"], capture_output=True, text=True, env=env, timeout=15
                )
                fields = dict(i.split("=", 1) for i in proc.stdout.split("\n")[-2].split()[1:])
                walls.append(int(fields["wall_ns"]) / 1e6)
                rss.append(int(fields["maxrss_kib"]))
            out.add("floor /bin/true", "wall median ms", f"{statistics.median(walls):.2f}")
            out.add("floor /bin/true", "peak RSS max MiB", f"{mib(max(rss)):.2f}")

            base = [args.bin, "-c", CREDS]
            cases = [
                ("ims-token HTTP", base + ["--ims", http.url], http),
                ("ims-token HTTPS", base + ["--ims", https.url, "--ca-file", CA], https),
            ]
            if args.static_bin:
                cases.append(
                    (
                        "static HTTPS",
                        [args.static_bin, "-c", CREDS, "--ims", https.url, "--ca-file", CA],
                        https,
                    )
                )
            medians = {}
            for name, argv, server in cases:
                log(f"{name}: {WARMUPS} warm-ups + {runs} runs")
                before = server.count()
                walls, rss = series(args.helper, argv, env, runs)
                exchanges = server.count() - before
                medians[name] = statistics.median(walls)
                target = "5-6 (shared DEPENDENCIES.md)" if name.endswith("HTTP") else "7-9 (shared DEPENDENCIES.md)"
                out.timing(name, walls, rss, target, "4-5 (shared DEPENDENCIES.md)")
                out.add(name, "exchanges / runs", f"{exchanges} / {runs + WARMUPS}", "1 each")

            # Cached: one filling run, then runs that must not reach IMS.
            cache = os.path.join(tmp, "cache", "token")
            os.makedirs(os.path.dirname(cache), mode=0o700)
            cached = base + ["--ims", https.url, "--ca-file", CA, "--cache", cache]
            log(f"cached: 1 filling run + {cache_runs} hits")
            run_once(args.helper, cached, env)
            before = https.count()
            walls, rss = series(args.helper, cached, env, cache_runs, warmups=0)
            out.timing("cached (--cache)", walls, rss, "<= 2", "<= 6")
            out.add("cached (--cache)", "exchanges during hits", str(https.count() - before), "0")

            # A hit against `--version` in paired runs (one of each, in
            # turn), so that a busy machine slows both alike.
            log(f"cached vs --version: {cache_runs} pairs")
            version = f"ims-token {args.version}"
            hits, versions = [], []
            for _ in range(cache_runs):
                hits.append(run_once(args.helper, cached, env)[0])
                versions.append(run_once(args.helper, [args.bin, "--version"], env, version)[0])
            ratio = statistics.median(hits) / statistics.median(versions)
            out.add("cached (--cache)", "paired: --version wall median ms", f"{statistics.median(versions):.2f}")
            out.add("cached (--cache)", "paired: hit wall median ms", f"{statistics.median(hits):.2f}")
            out.add("cached (--cache)", "paired: hit / --version (median)", f"{ratio:.2f}", "<= 1.2")

            # Instructions (callgrind): repeatable figures.
            log("instructions (callgrind): cache hit, fetches")
            vg_env = dict(env, TMPDIR=tmp)
            out.add("instructions M", "cache hit (--cache)", millions(callgrind(cached, vg_env, tmp)), "< 0.8")
            out.add("instructions M", "--version", millions(callgrind([args.bin, "--version"], vg_env, tmp)))
            out.add(
                "instructions M",
                "fetch HTTPS, --ca-file",
                millions(callgrind(base + ["--ims", https.url, "--ca-file", CA], vg_env, tmp)),
            )
            out.add(
                "instructions M",
                "fetch HTTP (no TLS)",
                millions(callgrind(base + ["--ims", http.url], vg_env, tmp)),
            )
            # The default roots only: the test server's CA is not among them,
            # so this ends at the certificate check (exit 3), after the
            # signing, the root store and the handshake.
            out.add(
                "instructions M",
                "fetch HTTPS, default roots (ends at the certificate, exit 3)",
                millions(callgrind(base + ["--ims", https.url, "--retries", "0"], vg_env, tmp, 3)),
            )

            # The shell baseline over the same HTTPS fake.
            log(f"baseline: {WARMUPS} warm-ups + {runs} runs")
            state = os.path.join(tmp, "baseline")
            subprocess.run(
                ["bash", os.path.join(here, "baseline.sh"), "prepare", CREDS, state],
                check=True,
                env=env,
                timeout=30,
            )
            argv = ["bash", os.path.join(here, "baseline.sh"), "fetch", state, https.url, CA]
            before = https.count()
            walls, rss = series(args.helper, argv, env, runs)
            out.timing("baseline openssl+curl HTTPS", walls, rss)
            out.add(
                "baseline openssl+curl HTTPS",
                "exchanges / runs",
                f"{https.count() - before} / {runs + WARMUPS}",
                "1 each",
            )
            ratio = medians["ims-token HTTPS"] / statistics.median(walls)
            out.add("ratio", "ims-token HTTPS / baseline (median)", f"{ratio:.3f}", "<= 0.25")
            if args.static_bin:
                ratio = medians["static HTTPS"] / statistics.median(walls)
                out.add("ratio", "static HTTPS / baseline (median)", f"{ratio:.3f}", "<= 0.25")
    except RunFailed as e:
        print(f"measure: a run failed: {e}", file=sys.stderr)
        return 1
    finally:
        http.stop()
        https.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
