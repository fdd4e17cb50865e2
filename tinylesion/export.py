"""python -m tinylesion.export --weights RUN_DIR --onnx model.onnx: a run's model as ONNX."""
import json
import sys
from pathlib import Path

from .flags import OneLineParser, folder_path


def metadata(run):
    """What an app needs beside the graph: class names, input size, preprocessing, and the
    normalisation the input must have (all as JSON text)."""
    return {"model": run["model"], "class_names": json.dumps(run["class_names"]),
            "input_size": json.dumps(list(run["image_size"])),
            "preprocess": run.get("preprocess", "resize"),
            "mean": json.dumps(run["mean"]), "std": json.dumps(run["std"]),
            "input": "RGB in [0, 1], minus mean, divided by std, as (N, 3, H, W) float32"}


def main(argv=None):
    """Write the ONNX file (exit 2 with a one-line error on bad input)."""
    from .predict import PredictError, load_run
    parser = OneLineParser(prog="python -m tinylesion.export",
                           description="Export a trained run's model as an ONNX file.")
    parser.add_argument("--weights", required=True, metavar="RUN_DIR", type=folder_path,
                        help="the run folder (holding run.json and weights.npz)")
    parser.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    args = parser.parse_args(argv)
    if not args.onnx.strip():   # Path("") is ".", the current folder: not what was meant
        parser.error("argument --onnx: expected a file path, got an empty string")
    out = Path(args.onnx)
    if out.is_dir():
        parser.exit(2, f"error: --onnx {out}: is a folder; give a file name such as "
                       f"{out / 'model.onnx'}\n")
    if not out.parent.is_dir():
        parser.exit(2, f"error: --onnx {out}: the folder {out.parent} does not exist\n")
    try:
        import onnx  # noqa: F401
    except ImportError:
        parser.exit(2, "error: export needs the onnx package: pip install 'tinylesion[onnx]'\n")
    from .onnx import ExportError, export
    try:
        model, run = load_run(args.weights)
        export(model, out, tuple(run["image_size"]), metadata(run))
    except (PredictError, ExportError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): input 'input' (N, 3, "
          f"{run['image_size'][1]}, {run['image_size'][0]}), outputs 'logits' and "
          f"'probabilities' over {', '.join(run['class_names'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
