"""Where one training step's CPU time goes, per kernel, one thread: tinylesion's step (cProfile on
process CPU time: each Numba kernel, C call and Python function's own time a line) and
PyTorch's (torch.profiler's self time per aten op, as shares of the step's CPU time), each in a
process of its own.

    /work/venv-torch/bin/python bench/step_profile.py --model padua4 [--steps 5] [--no-torch]

The same model, weights and batch as bench/train_step.py (batch 32); the warm-up steps are
outside. One thread, so that CPU time is the work itself: on a shared machine the figures
still move by several per cent, and the two engines' totals are not a speed ratio (use
bench/train_step.py for that).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_CNNS = ("padua4", "baseline_cnn", "melanoma_cnn")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=SEED_CNNS, default="padua4")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (default 5)")
    parser.add_argument("--top", type=int, default=25, help="lines per engine (default 25)")
    parser.add_argument("--no-torch", action="store_true", help="profile tinylesion only")
    parser.add_argument("--engine", choices=("tinylesion", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1:
        parser.error("--steps and --top must be at least 1")
    return args


def _job(args, engine):
    from train_step_workers import Job
    facts = json.loads(os.environ["STEP_PROFILE_FACTS"])
    return Job(engine, args.model, facts["num_classes"], tuple(facts["size"]),
               facts["binary"], 32, "train", "cpu", 1, 2, True, args.data)


def _profile_tinylesion(args):
    """{line: ms per step} and the step's CPU ms, from cProfile on process CPU time."""
    import cProfile
    import pstats
    from numba.core.registry import CPUDispatcher
    from train_step_workers import build_tinylesion
    engine = build_tinylesion(_job(args, "tinylesion"))
    for _ in range(2):
        engine.step()
    profiler = cProfile.Profile(time.process_time)
    start = time.process_time()
    profiler.enable()
    for _ in range(args.steps):
        engine.step()
    profiler.disable()
    total = 1000 * (time.process_time() - start) / args.steps
    lines = {}
    for (path, _, name), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():
        module = sys.modules.get(_module_of(path))
        if isinstance(getattr(module, name, None), CPUDispatcher):
            label = f"Numba {os.path.basename(path)}:{name}"
        elif path == "~":   # a call into C: NumPy, the BLAS, Python's builtins
            label = f"C {name.strip('<>')}"
        else:   # Python code's own time, with the NumPy ufuncs it calls (not profiled apart)
            label = f"Python {os.path.basename(path)}:{name}"
        lines[label] = lines.get(label, 0.0) + 1000 * own / args.steps
    lines["(the profiler's own and unattributed time)"] = total - sum(lines.values())
    return lines, total


def _module_of(path):
    """'kernels.relu' for .../kernels/relu.py (the packages this project's kernels live in)."""
    parts = os.path.splitext(path)[0].split(os.sep)
    for top in ("kernels", "tinylesion"):
        if top in parts:
            return ".".join(parts[parts.index(top):])
    return ""


def _profile_torch(args):
    """{aten op: self CPU ms per step} and the step's CPU ms, from torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from train_step_workers import build_torch
    torch.set_num_threads(1)
    engine = build_torch(_job(args, "torch"))
    for _ in range(2):
        engine.step()
    start = time.process_time()
    for _ in range(args.steps):
        engine.step()
    total = 1000 * (time.process_time() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            engine.step()
    # NOTE: the profiler clocks each op's wall time, which a loaded machine stretches: the
    # lines are given as their shares of the step's CPU time measured without the profiler
    lines = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    clocked = sum(lines.values()) or 1.0
    return {k: total * v / clocked for k, v in lines.items()}, total


def _worker(args):
    run = _profile_tinylesion if args.engine == "tinylesion" else _profile_torch
    lines, total = run(args)
    print(json.dumps({"lines": lines, "total": total}))


def _run(args, engine, python, facts, data):
    env = dict(os.environ, STEP_PROFILE_FACTS=json.dumps(facts))
    command = [python, os.path.abspath(__file__), "--model", args.model, "--steps",
               str(args.steps), "--engine", engine, "--data", data]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"step_profile: the {engine} process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(args):
    # NOTE: this folder is on the path (the script's own), behind the project, whose kernels
    # package bench/kernels.py would otherwise shadow
    sys.path.insert(0, os.path.dirname(HERE))
    import machine
    machine.use_processor_blas()
    for var in ("TINYLESION_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if args.engine:
        return _worker(args)
    import train_step
    case = train_step.Case(args.model, None, 32, 2, args.steps, "train")
    with tempfile.TemporaryDirectory() as workdir:
        data = os.path.join(workdir, f"{args.model}.npz")
        facts, _ = train_step.prepare(case, data)
        facts = {k: facts[k] for k in ("num_classes", "size", "binary")}
        engines = [("tinylesion", sys.executable)]
        if not args.no_torch:
            engines.append(("torch", sys.executable))
        for engine, python in engines:
            result = _run(args, engine, python, facts, data)
            print(f"\n{engine}: {args.model} training step, batch 32, 1 thread, "
                  f"{result['total']:.1f} ms of CPU time a step ({machine.blas_note()})")
            ranked = sorted(result["lines"].items(), key=lambda kv: -kv[1])[:args.top]
            for label, ms in ranked:
                print(f"  {ms:8.2f} ms  {label}")


if __name__ == "__main__":
    main(parse_args())
