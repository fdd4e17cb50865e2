"""Mutation check: plant single-line bugs, one at a time, in a copy of the tree; run the tests.

    nice -n 15 python tests/mutation/run.py                      # every target, sampled
    nice -n 15 python tests/mutation/run.py --target train --max 40 --timeout 240
    nice -n 15 python tests/mutation/run.py --planted            # the issue-19 bugs only
    python tests/mutation/run.py --list --target resample        # show the mutants, run none

Each mutant changes one expression or statement on one line of one module (an operator
swapped, a comparison flipped, an integer constant off by one, a term or a sign dropped, a
statement skipped, a condition forced so that a function returns early, min and max swapped)
in a copy of the checkout made once in a temporary folder; the checkout itself is never
written. The copy's file is restored after each mutant. Each mutant runs the tests mapped to
its module (TARGETS) with `pytest -x` and a timeout: a failing test (or a timeout) catches it;
passing tests let it survive. The report lists the survivors with their line, and the score.

Not collected by pytest (the file name does not start with test_).
"""
import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# target -> (modules, [functions to mutate or None for all], tests to run, fastest first)
# (the ops' conv and pool tests are left out of a mutant's run: they take minutes under load,
# and the layers they wrap are tested in tests/test_nn.py and tests/kernels/)
OPS_TESTS = ["tests/test_op_signs.py", "tests/test_ops.py", "-k",
             "not test_conv2d and not test_max_pool2d", "tests/test_tensor_functions.py",
             "tests/test_losses.py"]
TARGETS = {
    "train": (["tinylesion/train.py"], ["fit", "_run_eval", "_loss", "_predicted", "probabilities",
                                        "evaluate_model", "_copy_state", "_lr",
                                        "write_history_csv", "prepare_batch"],
              ["tests/test_training_policy.py", "tests/test_train.py"]),
    "cli": (["tinylesion/cli.py", "tinylesion/datalayout.py"],
            ["_run", "_prepare", "_train", "_train_class_weights", "_optimizer", "_binary_order",
             "_dermmel", "open_data", "split_fractions", "_float"],
            ["tests/test_cli_flags.py", "tests/test_run_outputs.py", "tests/test_cli_errors.py"]),
    "transforms": (["tinylesion/data/transforms.py"], None,
                   ["tests/data/test_transform_geometry.py", "tests/data/test_transforms.py"]),
    "resample": (["tinylesion/data/resample.py", "tinylesion/data/imageio.py"],
                 ["_coefficients", "_resize_into", "bilinear_resize", "resize", "_half_geometry",
                  "_fit", "_draft_need"],
                 ["tests/data/test_crop_geometry.py", "tests/data/test_resample_boxes.py",
                  "tests/data/test_resample.py", "tests/data/test_imageio.py"]),
    "ops": (sorted(f"tinylesion/ops/{p.name}" for p in (ROOT / "tinylesion" / "ops").glob("*.py")
                   if p.name != "__init__.py"), None,
            OPS_TESTS + ["tests/test_nn.py", "tests/test_activations.py",
                         "tests/test_pool_options.py"]),
}

# The six bugs issue 19 found unguarded, as (name, module, text, replacement, the tests that
# catch it, the tests that let it through before issue 19): each must be caught.
PLANTED = [
    ("abs-gradient-without-sign", "tinylesion/ops/arithmetic.py",
     "return gy * get_array_module(gy).sign(self.x)", "return gy",
     ["tests/test_op_signs.py", "tests/test_ops.py"], ["tests/test_ops.py"]),
    ("best-weights-never-restored", "tinylesion/train.py",
     "if best_state is not None and patience:", "if False:",
     ["tests/test_training_policy.py", "tests/test_train.py"], ["tests/test_train.py"]),
    ("early-stopping-never-stops", "tinylesion/train.py",
     "stopped = bool(patience) and wait >= patience", "stopped = False",
     ["tests/test_training_policy.py", "tests/test_train.py"], ["tests/test_train.py"]),
    ("plateau-x0.1-after-6", "tinylesion/cli.py",
     'mode="min", factor=0.5, patience=2)', 'mode="min", factor=0.1, patience=6)',
     ["tests/test_run_outputs.py", "tests/test_examples.py"], ["tests/test_examples.py"]),
    ("validation-reported-as-test", "tinylesion/cli.py",
     "evaluate_model(model, p.test_loader,", "evaluate_model(model, p.val_loader,",
     ["tests/test_run_outputs.py", "tests/test_examples.py"], ["tests/test_examples.py"]),
    ("half-crop-2px-off-centre", "tinylesion/data/imageio.py",
     "left, top = (hw - CROP) // 2, (hh - CROP) // 2",
     "left, top = min(hw - CROP, (hw - CROP) // 2 + 2), (hh - CROP) // 2",
     ["tests/data/test_crop_geometry.py", "tests/data/test_imageio.py"],
     ["tests/data/test_imageio.py", "tests/data/test_jpeg.py", "tests/data/test_datasets.py"]),
]

SWAP_BINOP = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div],
              ast.Div: [ast.Mult, ast.FloorDiv], ast.FloorDiv: [ast.Div],
              ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult], ast.LShift: [ast.RShift],
              ast.RShift: [ast.LShift], ast.BitAnd: [ast.BitOr], ast.BitOr: [ast.BitAnd]}
SWAP_CMP = {ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt], ast.Gt: [ast.GtE, ast.Lt],
            ast.GtE: [ast.Gt], ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot],
            ast.IsNot: [ast.Is], ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
SWAP_AUG = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


class Mutant:
    """One single-line change: the module, the line, its span, the new text, the category."""

    def __init__(self, path, node, text, category, function):
        self.path, self.line, self.col = path, node.lineno, node.col_offset
        self.end_col, self.text, self.category = node.end_col_offset, text, category
        self.function = function

    def apply(self, source):
        lines = source.splitlines(keepends=True)
        row = lines[self.line - 1]
        lines[self.line - 1] = row[:self.col] + self.text + row[self.end_col:]
        return "".join(lines)

    def describe(self, source):
        before = source.splitlines()[self.line - 1].strip()
        after = self.apply(source).splitlines()[self.line - 1].strip()
        return f"{self.path}:{self.line} [{self.category}] {before}  ->  {after}"


def _unparse(node):
    return "(" + ast.unparse(node) + ")"


def _skipped_spans(tree):
    """Nodes never mutated: docstrings, f-strings, raise statements and log/print calls
    (message text only), and the sign of a negative literal."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("log", "print")):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            skip.add(id(node))      # -1: its constant is mutated, its sign kept
        if isinstance(node, ast.JoinedStr):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and node.body and \
                isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            skip.update(id(n) for n in ast.walk(node.body[0]))
    return skip


def _single_line(node):
    return getattr(node, "lineno", None) is not None and node.lineno == node.end_lineno


def mutants_of(path, source, functions=None):
    """Every mutant of one module (in functions named `functions` when given)."""
    tree = ast.parse(source)
    skip = _skipped_spans(tree)
    found = []
    scopes = [tree] if functions is None else [
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))
        and n.name in functions]
    seen = set()
    for scope in scopes:
        owner = getattr(scope, "name", "")
        for node in ast.walk(scope):
            if id(node) in skip or id(node) in seen or not (
                    _single_line(node) or isinstance(node, ast.If)):
                continue
            seen.add(id(node))
            found += _node_mutants(path, node, owner, skip)
    found.sort(key=lambda m: (m.line, m.col, m.text))
    return found


def _node_mutants(path, node, owner, skip=()):
    out = []
    if not _single_line(node) and not isinstance(node, ast.If):
        return out

    def add(new_node, category, text=None):
        out.append(Mutant(path, node, text if text is not None else _unparse(new_node),
                          category, owner))

    if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.MatMult):
        for op in SWAP_BINOP.get(type(node.op), []):
            add(ast.BinOp(node.left, op(), node.right), "operator swap")
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            add(node.left, "dropped term")
        if isinstance(node.op, (ast.Add, ast.Mult)):
            add(node.right, "dropped term")
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in SWAP_CMP.get(type(node.ops[0]), []):
            add(ast.Compare(node.left, [op()], node.comparators), "flipped comparison")
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        add(ast.BoolOp(other, node.values), "and/or swap")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        add(node.operand, "dropped sign" if isinstance(node.op, ast.USub) else "dropped not")
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        add(None, "off-by-one constant", str(node.value + 1))
        if node.value != 0:
            add(None, "off-by-one constant", str(node.value - 1))
    elif isinstance(node, ast.Constant) and type(node.value) is float and node.value != 0:
        add(None, "changed constant", repr(node.value * 2))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id in ("min", "max"):
        other = "max" if node.func.id == "min" else "min"
        add(ast.Call(ast.Name(other), node.args, node.keywords), "min/max swap")
    elif isinstance(node, ast.AugAssign) and type(node.op) in SWAP_AUG:
        add(ast.AugAssign(node.target, SWAP_AUG[type(node.op)](), node.value), "operator swap",
            ast.unparse(ast.AugAssign(node.target, SWAP_AUG[type(node.op)](), node.value)))
    if isinstance(node, (ast.Expr, ast.AugAssign, ast.Break, ast.Continue)) and not (
            isinstance(node, ast.Expr) and (isinstance(node.value, ast.Constant)
                                            or id(node.value) in skip)):   # a log line
        add(None, "skipped statement", "pass")
    if isinstance(node, ast.If):
        if not _single_line(node.test) or id(node.test) in skip:
            return out
        returns = any(isinstance(n, (ast.Return, ast.Raise)) for n in node.body)
        # the test only: the span of the condition inside the if line
        out.append(Mutant(path, node.test, "True",
                          "returned early" if returns else "forced condition", owner))
        out.append(Mutant(path, node.test, "False", "forced condition", owner))
    return out


# ---------------------------------------------------------------------------------------------

def make_copy(dest):
    """The checkout's code and tests (with their caches) copied into dest, times kept."""
    ignore = shutil.ignore_patterns(".git", "runs", ".ci-venv", ".hypothesis", ".pytest_cache")
    for name in ("tinylesion", "kernels", "tests", "examples", "bench"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore, copy_function=shutil.copy2)
    for name in ("setup.py", "pytest.ini", "README.md"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)


def run_tests(copy, tests, timeout):
    """('caught' | 'survived' | 'timeout', seconds, last lines of the output)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               TINYLESION_CACHE=str(copy / ".cache"))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--no-header", "-W", "ignore", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    took = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    tail = "\n".join(failed[:2] + lines[-1:])
    if proc.returncode == 0:
        return "survived", took, tail
    if proc.returncode in (1, 2, 3):   # failed, interrupted or internal error: the mutant broke it
        return "caught", took, tail
    return "caught", took, tail         # a crash (segfault...) also tells the bug apart


def write_mutant(target, text, stamp):
    target.write_text(text)
    os.utime(target, (stamp, stamp))   # a fresh time: no stale .pyc or Numba cache is taken


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", action="append", choices=sorted(TARGETS),
                   help="what to mutate (repeatable; default all)")
    p.add_argument("--max", type=int, default=30, help="mutants per target, sampled (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    p.add_argument("--planted", action="store_true", help="run the issue-19 bugs only")
    p.add_argument("--before", action="store_true",
                   help="with --planted: run the tests that let them through before issue 19")
    p.add_argument("--tests-from", metavar="REV",
                   help="run the tests as they were at this git revision (e.g. the commit "
                        "before issue 19's tests, with --planted --before)")
    p.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    p.add_argument("--rerun", metavar="JSON",
                   help="run again only the survivors recorded in this --json file")
    p.add_argument("--only", help="run only mutants whose description contains this text")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)

    jobs = []   # (name, module, mutated source, tests, description)
    if args.planted:
        for name, module, old, new, tests, before in PLANTED:
            tests = before if args.before else tests
            if args.only and args.only not in name:
                continue
            source = (ROOT / module).read_text()
            if source.count(old) != 1:
                sys.exit(f"planted bug {name}: {old!r} is not once in {module}")
            jobs.append((name, module, source.replace(old, new), tests,
                         f"{module} [{name}] {old}  ->  {new}"))
    else:
        rng = random.Random(args.seed)
        for target in args.target or sorted(TARGETS):
            modules, functions, tests = TARGETS[target]
            pool = []
            for module in modules:
                source = (ROOT / module).read_text()
                pool += [(m, source) for m in mutants_of(module, source, functions)]
            if args.only:
                pool = [(m, s) for m, s in pool if args.only in m.describe(s)]
            if args.rerun:
                again = {r["mutant"] for r in json.loads(Path(args.rerun).read_text())
                         if r["outcome"] == "survived"}
                pool = [(m, s) for m, s in pool if m.describe(s) in again]
            total = len(pool)
            if args.max and len(pool) > args.max and not args.rerun:
                pool = sorted(rng.sample(pool, args.max), key=lambda ms: (ms[0].path,
                                                                          ms[0].line))
            print(f"{target}: {len(pool)} of {total} mutants", flush=True)
            for m, source in pool:
                jobs.append((target, m.path, m.apply(source), tests, m.describe(source)))
    if args.list:
        for job in jobs:
            print(job[4])
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="tinylesion-mutants-") as tmp:
        copy = Path(tmp)
        make_copy(copy)
        if args.tests_from:
            shutil.rmtree(copy / "tests")
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.tests_from, "tests"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
        for i, (name, module, text, tests, description) in enumerate(jobs):
            target = copy / module
            original = (ROOT / module)
            try:
                compile(text, module, "exec")
            except SyntaxError:
                continue                       # not a program: not a mutant worth counting
            write_mutant(target, text, time.time() + 10 + i)
            try:
                outcome, took, tail = run_tests(copy, [t for t in tests if not t.endswith(".py")
                                                       or (copy / t).exists()], args.timeout)
            finally:
                shutil.copy2(original, target)
            results.append(dict(target=name, mutant=description, outcome=outcome,
                                seconds=round(took, 1)))
            print(f"[{i + 1}/{len(jobs)}] {outcome:8s} {took:6.1f}s  {description}", flush=True)
            if args.planted:
                print("   " + tail.replace("\n", "\n   "), flush=True)
    caught = sum(r["outcome"] == "caught" for r in results)
    timeouts = sum(r["outcome"] == "timeout" for r in results)
    print(f"\nscore: {caught}/{len(results) - timeouts} caught "
          f"({100.0 * caught / max(len(results) - timeouts, 1):.1f}%), "
          f"{timeouts} timed out (not counted)")
    by_target = {}
    for r in results:
        c, n = by_target.get(r["target"], (0, 0))
        if r["outcome"] != "timeout":
            by_target[r["target"]] = (c + (r["outcome"] == "caught"), n + 1)
    for name, (c, n) in sorted(by_target.items()):
        print(f"  {name}: {c}/{n}")
    survivors = [r["mutant"] for r in results if r["outcome"] == "survived"]
    if survivors:
        print("survivors:")
        for s in survivors:
            print("  " + s)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
