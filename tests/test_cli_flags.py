"""The examples' flags, parsed in-process: each value reaches args as given, each bad value is
refused with exit status 2 and a one-line message naming the flag (the boundaries included)."""
import pytest

from tinylesion import cli


def parse(*argv, task="ham"):
    return cli.parse_args(task, list(argv))


@pytest.mark.parametrize("flag, text", [
    ("--lr", "0"), ("--lr", "-1e-3"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "x"),
    ("--weight-decay", "-1"), ("--weight-decay", "nan"), ("--epochs", "0"),
    ("--batch-size", "0"), ("--workers", "-1"), ("--seed", "-1"), ("--early-stop", "-1"),
    ("--image-size", "0x10"), ("--image-size", "10x0"), ("--image-size", "10"),
    ("--split", "80/20/10"), ("--split", "100"), ("--split", "0/50/50"), ("--split", "a/b"),
    ("--split", "50/25/15/10"), ("--optimizer", "adamw"), ("--device", "tpu"),
    ("--class-weights", "inverse"), ("--model", "resnet9000")])
def test_bad_values_are_refused_naming_the_flag(capsys, flag, text):
    with pytest.raises(SystemExit) as stop:
        parse(flag, text)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("flag, text, attr, value", [
    ("--lr", "0.25", "lr", 0.25), ("--lr", "1e-5", "lr", 1e-5),
    ("--weight-decay", "0", "weight_decay", 0.0), ("--weight-decay", "0.5", "weight_decay", 0.5),
    ("--epochs", "1", "epochs", 1), ("--batch-size", "1", "batch_size", 1),
    ("--workers", "0", "workers", 0), ("--seed", "0", "seed", 0),
    ("--early-stop", "0", "early_stop", 0), ("--early-stop", "3", "early_stop", 3),
    ("--image-size", "100x75", "image_size", (100, 75)),
    ("--image-size", "1X2", "image_size", (1, 2)),
    ("--split", "80/10/10", "split", (0.8, 0.1, 0.1)), ("--split", "70/30", "split", (0.7, 0.3)),
    ("--split", "33.5/33.5/33", "split", (0.335, 0.335, 0.33)),
    ("--optimizer", "SGD", "optimizer", "sgd"), ("--device", "cuda", "device", "gpu"),
    ("--class-weights", "none", "class_weights", "none")])
def test_good_values_arrive_as_given(flag, text, attr, value):
    got = getattr(parse(flag, text), attr)
    assert got == (pytest.approx(value) if isinstance(value, (float, tuple)) else value)


@pytest.mark.parametrize("task, model, lr", [("ham", "padua4", 1e-3),
                                             ("melanoma", "melanoma_cnn", 1e-3),
                                             ("logistic", "logistic_regression", 1e-4),
                                             ("dense", "dense_nn", 1e-4)])
def test_defaults_of_each_example(task, model, lr):
    args = parse(task=task)
    assert (args.model, args.lr, args.batch_size, args.optimizer) == (model, lr, 32, "adam")
    assert (args.early_stop, args.split, args.class_weights, args.seed) == \
        (10, (0.8, 0.1, 0.1), "balanced", 0)
    assert args.epochs is None and args.image_size is None   # chosen by the data found
    assert not (args.augment or args.oversample or args.resume or args.skip_bad)


def test_resume_without_out_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)          # nothing may be written here
    with pytest.raises(SystemExit) as stop:
        cli.run(parse("--resume", "--data", str(tmp_path)), "ham", log=lambda *a: None)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "--out" in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_cache_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "cache").write_text("not a folder")
    (tmp_path / "data").mkdir()
    with pytest.raises(SystemExit) as stop:
        cli.run(parse("--data", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "run")), "ham", log=lambda *a: None)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--cache" in err and len(err.splitlines()) == 1, err
