"""python -m tinylesion.predict on 1,000 images against PyTorch doing the same job: images/s, ratio.

    python bench/predict.py [--images DIR] [--n 1000] [--model padua4] [--threads 2] [--repeat 3]
                            [--torch-workers N]

Nothing is trained: a run folder (run.json, weights.npz) is written for the model with its
seeded initial weights (the last layer's scaled, so that the probabilities spread), at the image
size of its example (padua4: 100x75), with HAM10000-like channel statistics. Without --images,
--n synthetic HAM10000 JPEGs (600x450) are generated once under --workdir. Timed, in turns,
after one untimed run of each (Numba's cache filled, the files in the page cache):
- the whole command, as a user waits for it: `python -m tinylesion.predict --weights RUN
  IMAGE...` against `python bench/torch_predict.py --weights RUN IMAGE...` (PyTorch with the
  same weights, the same preprocessing, the files streamed by a DataLoader's worker processes
  as predict streams them through its Loader's threads, batches of 64 as predict's, softmax,
  the same lines);
- the part after the model is loaded: PyTorch's script reports it; for tinylesion a child
  process runs predict's own functions (load_run, then predict_files and format_line) and
  times the part after load_run.
Both print every image's line; the two outputs are compared (they must agree to 2e-3). All
processes run on the processor's own BLAS kernel (bench/machine.py), named in the header; the
ratio is tinylesion's images/s over PyTorch's (> 1: tinylesion is faster). Run it with the
PyTorch venv's python (e.g. /work/venv-torch/bin/python); numbers from a loaded machine are not
measurements.
"""
import time

START = time.perf_counter()

import machine  # noqa: E402  (bench/, the script's folder, is first on sys.path)

machine.use_processor_blas()  # before NumPy loads OpenBLAS; the children inherit the setting

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SIZES = {"padua4": (100, 75), "padua5": (100, 75), "melanoma_cnn": (224, 224),
         "baseline_cnn": (128, 128), "dense_nn": (224, 224), "logistic_regression": (224, 224)}
# HAM10000-like channel statistics (the run folder's mean and std, on the 0..1 scale)
MEAN, STD = [0.763, 0.546, 0.570], [0.141, 0.153, 0.170]
HAM_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
LAST_LAYER_SCALE = 30.0
AGREE = 2e-3  # largest difference allowed between the two outputs' printed probabilities


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, help="a folder of images (searched recursively for "
                   ".jpg, .jpeg and .png); default: synthetic HAM10000 JPEGs")
    p.add_argument("--n", type=int, default=1000, help="images to predict (default 1000)")
    p.add_argument("--model", default="padua4", choices=sorted(SIZES))
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads of both engines (default: all cores)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    p.add_argument("--torch-workers", type=int, help="PyTorch's DataLoader worker processes "
                   "(default: --threads; 0 decodes in its main process, batch by batch)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/tinylesion-bench"))
    args = p.parse_args(argv)
    for name in ("n", "threads", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.torch_workers is not None and args.torch_workers < 0:
        p.error("--torch-workers must be at least 0")
    if args.images is not None and not args.images.is_dir():
        p.error(f"--images {args.images}: no such folder")
    return args


# ----- the inputs ----------------------------------------------------------------------------

def synthetic_images(workdir, n):
    """n synthetic HAM10000 JPEGs under workdir, generated once (atomically)."""
    from tinylesion.data import make_synthetic
    root = workdir / f"ham10000-{n}-seed0"
    if not (root / "synthetic.json").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
        print(f"generating {n} synthetic images in {root} ...", file=sys.stderr, flush=True)
        make_synthetic(tmp, n=n, seed=0, overwrite=True)
        os.replace(tmp, root)
    return sorted(root.glob("HAM10000_images_part_*/*.jpg"))


def image_paths(args):
    if args.images is None:
        paths = synthetic_images(args.workdir, args.n)
    else:
        paths = sorted(p for p in args.images.rglob("*")
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file())
    if len(paths) < args.n:
        raise SystemExit(f"bench/predict.py: --images {args.images} holds {len(paths)} images; "
                         f"--n asks for {args.n}")
    return [str(p) for p in paths[:args.n]]


def make_run(workdir, name):
    """A run folder for model `name` with its seeded initial weights; nothing is trained."""
    import numpy as np
    import tinylesion as tl
    from tinylesion.models import get_model
    from tinylesion.runinfo import check_run_info
    size = SIZES[name]
    binary = name in ("melanoma_cnn", "dense_nn", "logistic_regression")
    classes = ["Melanoma", "NotMelanoma"] if binary else HAM_CLASSES
    tl.manual_seed(0)
    model = get_model(name, num_classes=len(classes), image_size=size)
    run_dir = workdir / f"predict-run-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    run = {"example": "bench/predict.py", "model": name,
           "config": json.loads(json.dumps(model.config)), "image_size": list(size),
           "preprocess": "resize", "mean": MEAN, "std": STD, "class_names": classes,
           "binary": bool(model.binary), "settings": {"trained": False}}
    check_run_info(run, run_dir / "run.json")
    (run_dir / "run.json").write_text(json.dumps(run, indent=1))
    # NOTE: an untrained model's probabilities are all near 1/K; its last layer is scaled so
    # that they spread (0.03-0.3 for padua4), and comparing the engines' outputs means something.
    state = {k: np.array(tl.backend.to_numpy(getattr(v, "array", v)))
             for k, v in model.state_dict().items()}
    last = [k for k in state if k.endswith(".weight")][-1]
    state[last] *= LAST_LAYER_SCALE
    tl.save(state, run_dir / "weights.npz")
    return run_dir


# ----- the runs ------------------------------------------------------------------------------

def inner(run_dir, paths):
    """tinylesion's side of "after the model is loaded": predict's functions, as its main()."""
    from tinylesion import predict
    model, run = predict.load_run(run_dir)
    loaded = time.perf_counter()
    probs = predict.predict_files(model, run, paths)
    print("\n".join(predict.format_line(p, q, run["class_names"]) for p, q in zip(paths, probs)))
    end = time.perf_counter()
    print(json.dumps({"load_s": loaded - START, "work_s": end - loaded,
                      "blas": machine.blas_note()}), file=sys.stderr)


def timed(cmd, env):
    """(wall seconds, stdout, the JSON line the command printed last on stderr, or {})."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench/predict.py: {' '.join(cmd[:4])} ... failed:\n"
                         f"{proc.stderr[-3000:]}")
    report = {}
    lines = proc.stderr.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        report = json.loads(lines[-1])
    return wall, proc.stdout, report


def parse_lines(text):
    """{path: {class: probability}} of predict's output lines."""
    out = {}
    for line in text.strip().splitlines():
        path, rest = line.rsplit(": ", 1)
        words = rest.split()
        out[path] = {words[i]: float(words[i + 1]) for i in range(0, len(words), 2)}
    return out


def largest_difference(ours, theirs):
    a, b = parse_lines(ours), parse_lines(theirs)
    if a.keys() != b.keys():
        raise SystemExit("bench/predict.py: the two outputs name different images")
    return max(abs(a[p][k] - b[p][k]) for p in a for k in a[p])


def main(args):
    env = dict(os.environ)
    for var in ("TINYLESION_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    paths = image_paths(args)
    run_dir = make_run(args.workdir, args.model)
    ours_cmd = [sys.executable, "-m", "tinylesion.predict", "--weights", str(run_dir), *paths]
    workers = args.threads if args.torch_workers is None else args.torch_workers
    theirs_cmd = [sys.executable, str(HERE / "torch_predict.py"), "--weights", str(run_dir),
                  "--workers", str(workers), *paths]
    inner_cmd = [sys.executable, str(HERE / "predict.py"), "--inner", str(run_dir), *paths]
    first_ours, out_ours, _ = timed(ours_cmd, env)        # untimed: caches filled
    first_theirs, out_theirs, torch_report = timed(theirs_cmd, env)
    diff = largest_difference(out_ours, out_theirs)
    if not diff <= AGREE:
        raise SystemExit(f"bench/predict.py: tinylesion's and PyTorch's probabilities differ "
                         f"by {diff:.4f} (more than {AGREE}): not the same job")
    whole = {"ours": [], "theirs": []}
    after = {"ours": [], "theirs": []}
    load = {"ours": [], "theirs": []}
    for _ in range(args.repeat):
        whole["ours"].append(timed(ours_cmd, env)[0])
        wall, _, report = timed(theirs_cmd, env)
        whole["theirs"].append(wall)
        after["theirs"].append(report["work_s"])
        load["theirs"].append(report["load_s"])
        _, out_inner, report = timed(inner_cmd, env)
        after["ours"].append(report["work_s"])
        load["ours"].append(report["load_s"])
        inner_blas = report["blas"]
    if out_inner != out_ours:
        raise SystemExit("bench/predict.py: predict's functions and its command printed "
                         "different lines")
    med = {k: {e: statistics.median(v[e]) for e in v} for k, v in
           (("whole", whole), ("after", after), ("load", load))}
    n = len(paths)
    cpu = "?"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    size = SIZES[args.model]
    print(f"# predict, {datetime.date.today()}, {cpu}, {args.threads} threads; {n} images "
          f"({'synthetic 600x450 JPEGs' if args.images is None else args.images}) to "
          f"{args.model} at {size[0]}x{size[1]}; median of {args.repeat}; PyTorch "
          f"{torch_report.get('torch', '?')}, {workers} DataLoader worker(s)")
    print(f"tinylesion: {inner_blas}; PyTorch: {torch_report.get('blas', '?')}; "
          f"outputs agree to {diff:.4f}\n")
    print("| measurement | tinylesion | PyTorch | tinylesion / PyTorch |")
    print("|---|---:|---:|---:|")
    for label, key in (("whole command", "whole"), ("after the model is loaded", "after")):
        ours, theirs = n / med[key]["ours"], n / med[key]["theirs"]
        print(f"| images/s, {label} | {ours:,.1f} | {theirs:,.1f} | {ours / theirs:.2f}x |")
    print(f"| seconds, whole command | {med['whole']['ours']:.2f} | {med['whole']['theirs']:.2f}"
          f" | |")
    print(f"| seconds to start and load the model | {med['load']['ours']:.2f} | "
          f"{med['load']['theirs']:.2f} | |")
    print(f"| seconds, first run (untimed) | {first_ours:.2f} | {first_theirs:.2f} | |")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        inner(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit(main(parse_args()))
