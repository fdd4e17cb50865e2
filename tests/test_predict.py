"""python -m tinylesion.predict: probabilities as in training, one line per image, clear errors."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinylesion import cli, predict
from tinylesion.data import HAM10000, Loader, make_synthetic
from tinylesion.train import evaluate_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch padua1 run on 40 tiny synthetic HAM10000 images."""
    base = tmp_path_factory.mktemp("predict")
    data = make_synthetic(base / "ham", n=40, seed=1, image_size=(48, 36))
    args = cli.parse_args("ham", ["--data", str(data), "--model", "padua1", "--epochs", "1",
                                  "--image-size", "24x16", "--batch-size", "8", "--workers", "0",
                                  "--out", str(base / "run")])
    cli.run(args, "ham", log=lambda *a: None)
    return base / "run", data


def images(data, k):
    return sorted(data.glob("*/*.jpg"))[:k]


def test_probabilities_match_evaluation_and_print_sorted(run_dir, capsys):
    run, data = run_dir
    paths = images(data, 5)
    model, info = predict.load_run(run)
    probs = predict.predict_files(model, info, paths)
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the same preprocessing as training: equal to evaluating through the dataset and loader
    ds = HAM10000(data, image_size=tuple(info["image_size"]))
    index = [ds.paths.index(p) for p in paths]
    from tinylesion.data import Subset
    _, expected = evaluate_model(model, Loader(Subset(ds, index), batch_size=2, num_workers=0),
                                 mean=info["mean"], std=info["std"])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)

    assert predict.main(["--weights", str(run), *map(str, paths)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    for line, path in zip(lines, paths):
        assert line.startswith(f"{path}: ")
        values = [float(v) for v in re.findall(r" (\d\.\d+)", line)]
        assert len(values) == 7 and values == sorted(values, reverse=True)
        assert sum(values) == pytest.approx(1.0, abs=1e-3)


def test_binary_run_gives_two_probabilities(tmp_path, capsys):
    data = make_synthetic(tmp_path / "mel", n=20, seed=0, layout="dermmel", image_size=(32, 24))
    args = cli.parse_args("logistic", ["--data", str(data), "--epochs", "1", "--image-size",
                                       "16x12", "--workers", "0", "--out", str(tmp_path / "r")])
    cli.run(args, "logistic", log=lambda *a: None)
    path = sorted(data.glob("test/*/*.jpg"))[0]
    assert predict.main(["--weights", str(tmp_path / "r"), str(path)]) == 0
    line = capsys.readouterr().out
    assert "Melanoma" in line and "NotMelanoma" in line
    values = [float(v) for v in re.findall(r" (\d\.\d+)", line)]
    assert len(values) == 2 and sum(values) == pytest.approx(1.0, abs=1e-3)


def test_errors_are_one_line_with_exit_2(run_dir, tmp_path, capsys):
    run, data = run_dir
    image = str(images(data, 1)[0])
    assert predict.main(["--weights", str(tmp_path / "nope"), image]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text((run / "run.json").read_text())
    assert predict.main(["--weights", str(tmp_path / "half"), image]) == 2
    assert "weights.npz is missing" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert predict.main(["--weights", str(run), image, str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    assert predict.main(["--weights", str(run), str(tmp_path / "absent.jpg")]) == 2
    assert "not found" in capsys.readouterr().err
    assert predict.main(["--weights", str(run), str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder; give image files" in capsys.readouterr().err
    assert predict.main(["--weights", str(bad), image]) == 2
    assert f"--weights {bad}: is a file; give the run folder" in capsys.readouterr().err
    import json
    (tmp_path / "other").mkdir()
    saved = json.loads((run / "run.json").read_text())
    saved["config"]["num_classes"] = saved["config"].get("num_classes", 7) + 1
    saved["class_names"] = saved["class_names"] + ["extra"]  # a consistent run.json
    (tmp_path / "other" / "run.json").write_text(json.dumps(saved))
    (tmp_path / "other" / "weights.npz").write_bytes((run / "weights.npz").read_bytes())
    assert predict.main(["--weights", str(tmp_path / "other"), image]) == 2  # shapes differ
    assert "cannot load the weights" in capsys.readouterr().err


def test_module_entry_point(run_dir):
    run, data = run_dir
    proc = subprocess.run([sys.executable, "-m", "tinylesion.predict", "--weights", str(run),
                           str(images(data, 1)[0])], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1


def test_flag_errors_are_one_line_and_cuda_is_gpu(run_dir, capsys, monkeypatch):
    from tinylesion import backend
    run, data = run_dir
    image = str(images(data, 1)[0])
    for argv, message in ((["--weights", str(run), "--device", "tpu", image],
                           "argument --device: choose a device from cpu, gpu, auto; got 'tpu'"),
                          (["--weights", "", image], "argument --weights: expected a folder"),
                          ([image], "the following arguments are required: --weights")):
        with pytest.raises(SystemExit) as stop:
            predict.main(argv)
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and "\n" not in err and message in err
    asked = []

    def as_device(name):
        asked.append(name)
        raise backend.DeviceError("no GPU here")

    monkeypatch.setattr(backend, "as_device", as_device)
    assert predict.main(["--weights", str(run), "--device", "CUDA", image]) == 2
    assert asked == ["gpu"] and capsys.readouterr().err.strip() == "error: no GPU here"


def test_streamed_batches_keep_input_order(run_dir, capsys):
    """Threads decode ahead in batches; the probabilities come back in the order given, equal
    to predicting each image alone, whatever the batch size and thread count."""
    run, data = run_dir
    paths = images(data, 11)
    order = paths[::-1] + paths[:3]          # reversed, with repeats
    model, info = predict.load_run(run)
    alone = np.concatenate([predict.predict_files(model, info, [p], num_workers=0)
                            for p in order])
    for batch_size, workers in ((1, 2), (4, 2), (5, 3), (64, 2), (3, 0)):
        got = predict.predict_files(model, info, order, batch_size=batch_size,
                                    num_workers=workers)
        np.testing.assert_allclose(got, alone, rtol=1e-5, atol=1e-6)
    assert predict.main(["--weights", str(run), "--batch-size", "4", *map(str, order)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(p) for p in order]


def test_first_bad_file_in_input_order_is_named(run_dir, tmp_path, capsys):
    """With several threads decoding ahead, the error names the first bad file of the
    command line, one line, and no probabilities are printed."""
    run, data = run_dir
    good = [str(p) for p in images(data, 9)]
    bad = []
    for name in ("first.jpg", "second.png"):
        bad.append(tmp_path / name)
        bad[-1].write_bytes(b"not an image")
    argv = good[:5] + [str(bad[0])] + good[5:] + [str(bad[1])]
    for batch in ("2", "64"):
        assert predict.main(["--weights", str(run), "--batch-size", batch, *argv]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        err = err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(bad[0]) in err[0]
        assert str(bad[1]) not in err[0]


def test_batch_size_flag_is_checked(run_dir, capsys):
    run, data = run_dir
    for value, message in (("0", "must be >= 1, got 0"), ("x", "expected an integer")):
        with pytest.raises(SystemExit) as stop:
            predict.main(["--weights", str(run), "--batch-size", value,
                          str(images(data, 1)[0])])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and "\n" not in err and "--batch-size" in err \
            and message in err


def test_explain_folder_problems_are_one_line_naming_the_flag(run_dir, tmp_path, capsys):
    run, data = run_dir
    image = images(data, 1)[0]
    (tmp_path / "file").write_text("mine")
    cams = tmp_path / "file" / "cams"
    assert predict.main(["--weights", str(run), "--explain", str(cams), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --explain {cams}: cannot create the folder ({tmp_path / 'file'} is " \
                  "a file)", err
    cams = tmp_path / "cams"
    (cams / f"{image.stem}.gradcam.png").mkdir(parents=True)   # the overlay's name is taken
    assert predict.main(["--weights", str(run), "--explain", str(cams), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --explain {cams}: cannot write ") and "\n" not in err, err
    assert "Is a directory" in err
