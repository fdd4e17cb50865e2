"""Where a batch-1 resnet50 forward spends its time, per convolution layer: tinylesion on 1 and
on N threads, PyTorch on N threads (its own process), summed over the layers of each shape.

    /work/venv-torch/bin/python bench/latency_layers.py [--threads 2] [--reps 20] [--no-torch]

Each engine times its convolutions alone (tinylesion: the CPU kernel call, with the path it
took; PyTorch: forward hooks around each Conv2d, its batch norm and ReLU listed on their own
lines, as they run as separate ops there), and the whole forward (median and minimum). On a
shared machine the N-thread columns mean little: quote them from a quiet one.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _tinylesion(threads, reps):
    """{layer key: ms per forward} for 1 and `threads` threads, and the forwards' times."""
    sys.path.insert(0, os.path.dirname(HERE))
    import numpy as np
    import tinylesion as tl
    import kernels.conv_cpu as conv_cpu
    import kernels.threads as kernel_threads
    from tinylesion.models import resnet50
    spent = collections.defaultdict(float)
    plain = conv_cpu.forward

    def timed(x, W, b, kernel, stride, padding, OH, OW, relu, *rest):
        start = time.perf_counter()
        y = plain(x, W, b, kernel, stride, padding, OH, OW, relu, *rest)
        path = conv_cpu.forward_path(x.shape, W.shape, stride, padding)
        spent[_key(x.shape[1], x.shape[2], W.shape[0], kernel, stride) + f" {path}"] += \
            time.perf_counter() - start
        return y

    conv_cpu.forward = timed
    model = resnet50().eval()
    x = tl.tensor(np.random.default_rng(0).standard_normal((1, 3, 224, 224))
                  .astype(np.float32))
    out = {}
    for n in sorted({1, threads}):
        kernel_threads.set_num_threads(n)
        with tl.no_grad():
            for _ in range(3):
                model(x)
            spent.clear()
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
        out[n] = ({k: 1e3 * v / reps for k, v in spent.items()}, _summary(times))
    return out


def _torch(threads, reps):
    """The same for PyTorch on `threads` threads (run in a process of its own)."""
    import types
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torch
    import torchvision.models
    torch.set_num_threads(threads)
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    spent, starts = collections.defaultdict(float), {}

    def before(module, inputs):
        starts[id(module)] = time.perf_counter()

    def after(module, inputs, output):
        C, H = inputs[0].shape[1], inputs[0].shape[2]
        if isinstance(module, torch.nn.Conv2d):
            key = _key(C, H, module.out_channels, module.kernel_size, module.stride)
        else:
            key = f"{type(module).__name__} {C}x{H}x{H}"
        spent[key] += time.perf_counter() - starts[id(module)]

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU)):
            module.register_forward_pre_hook(before)
            module.register_forward_hook(after)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        spent.clear()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return {k: 1e3 * v / reps for k, v in spent.items()}, _summary(times)


def _key(C, H, F, kernel, stride):
    return f"{C}x{H}x{H} -> {F} {kernel[0]}x{kernel[1]}/{stride[0]}"


def _summary(times):
    times = sorted(times)
    return {"median": 1e3 * times[len(times) // 2], "min": 1e3 * times[0]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-part", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.reps < 1:
        parser.error("--threads and --reps must be positive")
    sys.path.insert(0, HERE)
    import machine
    machine.use_processor_blas()
    if args.torch_part:
        print(json.dumps(_torch(args.threads, args.reps)))
        return
    torch_layers, torch_total = {}, None
    if not args.no_torch:
        run = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-part",
                              "--threads", str(args.threads), "--reps", str(args.reps)],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"error: the PyTorch process failed (run with --no-torch without it): "
                     f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}")
        torch_layers, torch_total = json.loads(run.stdout.strip().splitlines()[-1])
    ours = _tinylesion(args.threads, args.reps)
    print(machine.blas_note())
    T = args.threads
    one, many = ours[1][0], ours[T][0]
    print(f"| layer (summed over its repeats), path | tinylesion 1 thread ms | tinylesion {T} "
          f"ms | scaling | PyTorch {T} ms |")
    print("|---|---|---|---|---|")
    for key in sorted(many, key=lambda k: -many[k]):
        shape = key.rsplit(" ", 1)[0]
        theirs = torch_layers.get(shape)
        print(f"| {key} | {one[key]:.2f} | {many[key]:.2f} | {one[key] / many[key]:.2f}x | "
              f"{'' if theirs is None else f'{theirs:.2f}'} |")
    rest = sum(v for k, v in torch_layers.items() if "->" not in k)
    print(f"| convolutions, summed | {sum(one.values()):.1f} | {sum(many.values()):.1f} | | "
          f"{sum(v for k, v in torch_layers.items() if '->' in k):.1f} (+ {rest:.1f} batch "
          f"norm and ReLU) |")
    for n, (_, total) in sorted(ours.items()):
        print(f"tinylesion, {n} thread(s): forward median {total['median']:.1f} ms, "
              f"min {total['min']:.1f} ms")
    if torch_total:
        print(f"PyTorch, {T} thread(s): forward median {torch_total['median']:.1f} ms, "
              f"min {torch_total['min']:.1f} ms")


if __name__ == "__main__":
    main()
