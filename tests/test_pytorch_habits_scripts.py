"""PyTorch training scripts written in PyTorch's idioms run with only their imports naming
tinylesion (tests/pytorch_scripts/): an MNIST-style script on scikit-learn's digits, a
folder-of-images script with ImageFolder, a CSV Dataset, transforms and checkpoints, and a
resnet18 fine-tuning script in the shape of the common transfer-learning tutorial."""
import ast
import csv
import os
import re
import runpy
import sys

import numpy as np
from PIL import Image

import tinylesion as tl

SCRIPTS = os.path.join(os.path.dirname(__file__), "pytorch_scripts")


def run_script(name, argv, monkeypatch):
    """Run a script as `python name argv...` in this process; its main()'s return value."""
    monkeypatch.setattr(sys, "argv", [name] + list(argv))
    namespace = runpy.run_path(os.path.join(SCRIPTS, name), run_name="not_main")
    return namespace, namespace["main"](argv)


def test_only_imports_name_tinylesion():
    for name in sorted(os.listdir(SCRIPTS)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(SCRIPTS, name)) as f:
            source = f.read()
        tree = ast.parse(source)
        imports = {node.lineno for node in ast.walk(tree)
                   if isinstance(node, (ast.Import, ast.ImportFrom))}
        docstring_end = tree.body[0].end_lineno   # the module docstring
        code = [line for number, line in enumerate(source.splitlines(), start=1)
                if number > docstring_end and number not in imports]
        assert imports and not [line for line in code if "tinylesion" in line], name
        renamed = source.replace("tinylesion.vision", "torchvision").replace("tinylesion",
                                                                              "torch")
        assert "tl." not in renamed


def test_mnist_style_script_trains_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace, accuracy = run_script("digits_main.py", ["--epochs", "2", "--save-model",
                                                        "--log-interval", "5"], monkeypatch)
    out = capsys.readouterr().out
    assert "Train Epoch: 2 [" in out and out.count("Test set: Average loss") == 2
    assert accuracy > 0.6, out
    assert os.listdir(tmp_path) == ["mnist_cnn.pt"]
    model = namespace["Net"]()
    model.load_state_dict(tl.load("mnist_cnn.pt"))
    loader = tl.utils.data.DataLoader(
        namespace["Digits"](False, namespace["transforms"].Compose(
            [namespace["transforms"].ToTensor(),
             namespace["transforms"].Normalize((0.1307,), (0.3081,))])), batch_size=500)
    assert namespace["test"](model, tl.device("cpu"), loader) == accuracy
    # --dry-run stops each epoch after the first logged batch, as in the original
    _, dry = run_script("digits_main.py", ["--epochs", "1", "--dry-run"], monkeypatch)
    assert capsys.readouterr().out.count("Train Epoch") == 1


def _image_tree(root, per_class=24, with_test_csv=True):
    """Two visually distinct classes of 40x40 RGB PNGs in root/train, plus test.csv over 12
    more in root/test (with_test_csv=False: the classes' folders directly in root, no test set)."""
    rng = np.random.default_rng(0)
    rows = []
    for label, name in enumerate(("bright", "dark")):
        for i in range(per_class + 6):
            base = 190 if label == 0 else 60
            pixels = np.clip(rng.normal(base, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
            pixels[10:30, 10:30, label] = 255 if label == 0 else 0
            if i < per_class or not with_test_csv:
                folder = os.path.join(root, "train" if with_test_csv else "", name)
                os.makedirs(folder, exist_ok=True)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i:03d}.png"))
            else:
                os.makedirs(os.path.join(root, "test"), exist_ok=True)
                path = os.path.join("test", f"{name}_{i}.png")
                Image.fromarray(pixels).save(os.path.join(root, path))
                rows.append({"path": path, "label": label})
    if not with_test_csv:
        return
    with open(os.path.join(root, "test.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)


def test_folder_script_trains_checkpoints_and_reloads(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    _image_tree(str(data))
    monkeypatch.chdir(tmp_path)
    _, accuracy = run_script("folder_train.py", ["--data", str(data), "--epochs", "3"],
                             monkeypatch)
    out = capsys.readouterr().out
    assert "classes: ['bright', 'dark']; train 39, holdout 9, test 12" in out
    assert out.count("holdout accuracy") == 3 and "test accuracy" in out
    assert accuracy >= 0.75, out
    checkpoint = tl.load(tmp_path / "checkpoint.pth")
    assert sorted(checkpoint) == ["classes", "epoch", "model_state_dict",
                                  "optimizer_state_dict"]
    assert checkpoint["classes"] == ["bright", "dark"]
    assert checkpoint["optimizer_state_dict"]["param_groups"][0]["momentum"] == 0.9


def test_folder_script_is_reproducible_whatever_the_workers(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    _image_tree(str(data), per_class=12)
    monkeypatch.chdir(tmp_path)
    runs = []
    for workers in (0, 3):
        run_script("folder_train.py", ["--data", str(data), "--epochs", "1", "--workers",
                                       str(workers)], monkeypatch)
        runs.append([line for line in capsys.readouterr().out.splitlines() if "loss" in line])
    assert len(runs[0]) == 2 and runs[0] == runs[1]


def test_transfer_tutorial_script_fine_tunes_and_keeps_its_best_weights(tmp_path, monkeypatch,
                                                                        capsys):
    data = tmp_path / "data"
    _image_tree(str(data / "train"), per_class=12, with_test_csv=False)
    _image_tree(str(data / "val"), per_class=6, with_test_csv=False)
    monkeypatch.chdir(tmp_path)
    namespace, (best_acc, accuracy) = run_script(
        "transfer_tutorial.py", ["--data", str(data), "--epochs", "2"], monkeypatch)
    out = capsys.readouterr().out
    epoch_lines = re.findall(r"^(train|val) Loss: (\d+\.\d{4}) Acc: (\d\.\d{4})$", out, re.M)
    assert [phase for phase, _, _ in epoch_lines] == ["train", "val"] * 2, out
    val_accuracies = [float(acc) for phase, _, acc in epoch_lines if phase == "val"]
    # the weights loaded back are those of the best validation epoch, and the final pass
    # over the validation set measures exactly that accuracy
    assert f"Best val Acc: {max(val_accuracies):4f}" in out
    assert round(float(accuracy), 4) == max(val_accuracies) == round(float(best_acc), 4)
    assert re.search(r"final val accuracy \d\.\d{3}$", out, re.M)
    model = namespace["models"].resnet18(num_classes=2)
    model.load_state_dict(tl.load(tmp_path / "model_ft.pth"))


def test_readme_import_lines_work():
    with open(os.path.join(os.path.dirname(SCRIPTS), "..", "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
              if "import tinylesion as torch" in b]
    assert len(blocks) == 1
    scope = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert scope["torch"] is tl and scope["DataLoader"] is tl.utils.data.DataLoader
    assert scope["torchvision"].transforms is scope["transforms"]
