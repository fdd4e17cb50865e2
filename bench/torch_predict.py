"""PyTorch doing python -m tinylesion.predict's job, for bench/predict.py: the same lines printed.

    python bench/torch_predict.py --weights RUN_DIR [--batch-size 64] [--workers N] IMAGE ...

The same run folder (run.json; weights.npz read with NumPy into bench/torch_models.py's twin of
the model), the same preprocessing as tinylesion's "resize" (Pillow; a JPEG at least twice the
model's input on both sides is decoded by libjpeg at a reduced scale still at least that input,
as read_rgb's draft decoding does; RGB; bilinear resize with reducing_gap 3; (x / 255 - mean) /
std), the images streamed as PyTorch's own tool does it: a torch.utils.data.DataLoader whose
--workers processes (default: torch's thread count) decode the next batches while the model
runs on the current one, as predict's threads do; batches of 64 as predict's, under
torch.inference_mode; softmax (sigmoid for a one-logit model), and one line per image: "path:
class p  class p ..." from the most to the least probable. Unlike predict it does not turn
images by their EXIF orientation (the benchmark's images have none). On stderr, one JSON line:
the seconds to import and load the model ("load_s") and those of the rest ("work_s").
"""
import time

START = time.perf_counter()

import machine  # noqa: E402  (bench/, the script's folder, is first on sys.path)

machine.use_processor_blas()  # before NumPy loads OpenBLAS: the processor's own kernel

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from torch_models import torch_model  # noqa: E402  (bench/, the script's folder)


def read_image(path, size):
    """uint8 (H, W, 3) of the file at `size` (width, height), as tinylesion's read_rgb."""
    width, height = size
    with Image.open(path) as im:
        if im.format == "JPEG" and 2 * width <= im.width and 2 * height <= im.height:
            im.draft("RGB", (width, height))
        im = im.convert("RGB")
        return np.asarray(im.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))


class Files(torch.utils.data.Dataset):
    """The image files as float32 (3, H, W) normalised tensors."""

    def __init__(self, paths, size, mean, std):
        self.paths, self.size = paths, size
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).reshape(3, 1, 1)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        x = torch.from_numpy(read_image(self.paths[index], self.size)).permute(2, 0, 1)
        return (x.float() / 255 - self.mean) / self.std


def load(run_dir):
    """(model in eval mode, run.json) of a run folder."""
    run = json.loads((run_dir / "run.json").read_text())
    model = torch_model(run["model"], len(run["class_names"]), tuple(run["image_size"]),
                        block_dropout=run["config"].get("block_dropout", False))
    with np.load(run_dir / "weights.npz") as weights:  # tl.save's .npz: one array per name
        model.load_state_dict({k: torch.from_numpy(weights[k]) for k in model.state_dict()})
    return model.eval(), run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, type=Path, metavar="RUN_DIR")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=torch.get_num_threads(),
                        help="DataLoader worker processes (default: torch's thread count)")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    model, run = load(args.weights)
    loaded = time.perf_counter()
    files = Files(args.images, tuple(run["image_size"]), run["mean"], run["std"])
    batches = torch.utils.data.DataLoader(files, batch_size=args.batch_size,
                                          num_workers=args.workers)
    out = []
    with torch.inference_mode():
        for x in batches:
            logits = model(x)
            if logits.shape[1] == 1:
                p = torch.sigmoid(logits.reshape(-1)).double()
                out.append(torch.stack([1 - p, p], dim=1).numpy())
            else:
                out.append(torch.softmax(logits, dim=1).double().numpy())
    probs = np.concatenate(out)
    names = run["class_names"]
    lines = []
    for path, p in zip(args.images, probs):
        order = np.argsort(-p, kind="stable")
        lines.append(f"{path}: " + "  ".join(f"{names[k]} {p[k]:.4f}" for k in order))
    print("\n".join(lines))
    end = time.perf_counter()
    print(json.dumps({"load_s": loaded - START, "work_s": end - loaded, "torch": torch.__version__,
                      "blas": machine.blas_note()}), file=sys.stderr)


if __name__ == "__main__":
    main()
