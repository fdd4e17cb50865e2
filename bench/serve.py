"""Load on python -m tinylesion.serve: N concurrent clients for T seconds on the loopback.

    python bench/serve.py [--weights RUN_DIR] [--clients 16] [--seconds 20] [--threads 1]
                          [--workers 1]

For each configuration (1 client; N clients one image per forward pass, --max-batch 1; N clients
with dynamic batching, --max-batch 32 --max-wait-ms 10) a fresh server is started in a
subprocess on a free port, warmed up, and loaded by client threads, each posting JPEG images
over its own keep-alive connection as fast as answers come. Printed per configuration:
requests/s, p50 and p99 latency, errors, the server's resident memory at the start and the end
of the load, and the batches the server formed (from /health). Without --weights, a padua4 run
(1 epoch on 60 synthetic images at 100x75) is made in a temporary folder first. With --workers N
every server runs N processes (memory and batches summed over them). The servers run on the
processor's own BLAS kernel (bench/machine.py), named in the header.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import machine  # noqa: E402  (bench/, the script's folder, is first on sys.path)

machine.use_processor_blas()  # before NumPy loads OpenBLAS; the servers inherit the setting

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    """Resident memory in MB of a process and its child processes (Linux /proc)."""
    total = float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1]) / 1024
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += rss_mb(int(child))
        except OSError:   # it ended meanwhile
            pass
    return total


def make_run(base):
    from tinylesion import cli
    from tinylesion.data import make_synthetic
    data = make_synthetic(base / "data", n=60, seed=0, image_size=(200, 150))
    args = cli.parse_args("ham", ["--data", str(data), "--model", "padua4", "--epochs", "1",
                                  "--batch-size", "16", "--workers", "0", "--out",
                                  str(base / "padua4")])
    cli.run(args, "ham", log=lambda *a: None)
    return base / "padua4", sorted(data.glob("*/*.jpg"))[:8]


def request(conn, body):
    conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/jpeg"})
    answer = conn.getresponse()
    data = answer.read()
    return answer.status, data


def start_server(run, max_batch, max_wait_ms, env, workers=1):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tinylesion.serve", "--weights", str(run),
                             "--port", str(port), "--max-batch", str(max_batch),
                             "--max-wait-ms", str(max_wait_ms), "--workers", str(workers)],
                            cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start")


def load(port, bodies, clients, seconds):
    """(latencies in s, errors, requests) of `clients` threads posting for `seconds`."""
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad, k = [], 0, i
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                status, _ = request(conn, bodies[k % len(bodies)])
                if status != 200:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - start)
            k += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), errors[0]


def health(port, name, workers=1):
    """{process id: batching counts of model `name`} of every server process (each new
    connection is answered by one of them: asked until all have answered, 200 times at most)."""
    seen = {}
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        answer = json.loads(conn.getresponse().read())
        conn.close()
        seen[answer.get("process")] = answer["batching"][name]
        if len(seen) >= workers:
            break
    return seen


def batches(before, after):
    """(requests, forward passes, largest batch) between two health() answers, summed over the
    processes that both name."""
    both = [p for p in after if p in before]
    served = sum(after[p]["requests"] - before[p]["requests"] for p in both)
    passes = sum(after[p]["forward_passes"] - before[p]["forward_passes"] for p in both)
    return served, passes, max((after[p]["largest_batch"] for p in both), default=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="a run folder (default: make padua4)")
    parser.add_argument("--images", type=Path, nargs="*", help="JPEGs to post (default: the "
                        "synthetic ones)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (python -m tinylesion.serve --workers; default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="the server's BLAS/Numba threads (TINYLESION_NUM_THREADS; "
                             "default 1: on a shared machine, parallel kernels wait on "
                             "descheduled threads)")
    args = parser.parse_args()
    env = dict(os.environ, TINYLESION_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        run, images = (args.weights, args.images) if args.weights else make_run(Path(tmp))
        if not images:
            raise SystemExit("give --images with --weights")
        bodies = [Path(p).read_bytes() for p in images]
        info = json.loads((Path(run) / "run.json").read_text())
        print(f"model {info['model']} at {info['image_size'][0]}x{info['image_size'][1]}, "
              f"{args.seconds:.0f} s per configuration, {os.cpu_count()} CPUs, server threads "
              f"{args.threads}, server processes {args.workers}; {machine.blas_note()}")
        print(f"{'configuration':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'RSS start':>10} {'RSS end':>8} {'batch mean/max':>15}")
        rates = {}
        for label, clients, max_batch in (
                ("1 client", 1, 32),
                (f"{args.clients} clients, --max-batch 1", args.clients, 1),
                (f"{args.clients} clients, batching (32, 10 ms)", args.clients, 32)):
            proc, port = start_server(run, max_batch, 10, env, args.workers)
            name = Path(run).resolve().name
            try:
                warm = clients if args.workers == 1 else max(clients, 2 * args.workers)
                for _ in range(20):     # warm up, until every process has answered
                    load(port, bodies, warm, min(3.0, args.seconds))
                    before = health(port, name, args.workers)
                    if len(before) >= args.workers and all(
                            b["requests"] > 0 for b in before.values()):
                        break
                rss0 = rss_mb(proc.pid)
                latencies, errors = load(port, bodies, clients, args.seconds)
                rss1 = rss_mb(proc.pid)
                after = health(port, name, args.workers)
            finally:
                proc.terminate()
                proc.wait(30)
            served, passes, largest = batches(before, after)
            passes = max(1, passes)
            rate = len(latencies) / args.seconds
            rates[label] = rate
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            print(f"{label:<36} {rate:>8.1f} {p50:>8.1f} {p99:>8.1f} {errors:>7d} "
                  f"{rss0:>8.0f}MB {rss1:>6.0f}MB {served / passes:>9.1f}/{largest}")
        one, many = list(rates.values())[0], list(rates.values())[2]
        print(f"batching with {args.clients} clients serves {many / one:.1f}x the one-client rate")


if __name__ == "__main__":
    main()
