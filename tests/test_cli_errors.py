"""The examples' one-line errors for device problems and for running out of memory."""
import pytest

from tinylesion import backend, cli

from example_runs import quick, run


def test_out_of_memory_suggests_smaller_batch(monkeypatch, capsys, tmp_path):
    args = cli.parse_args("ham", ["--batch-size", "512", "--out", str(tmp_path)])

    def exhaust(*_):
        raise MemoryError("cannot allocate 9.1 GiB")

    monkeypatch.setattr(cli, "_run", exhaust)
    with pytest.raises(SystemExit) as stop:
        cli.run(args, task="ham")
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "--batch-size 512" in message and "smaller" in message


def test_other_errors_are_not_mistaken_for_memory(monkeypatch, tmp_path):
    args = cli.parse_args("ham", ["--out", str(tmp_path)])
    monkeypatch.setattr(cli, "_run", lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.run(args, task="ham")


def test_cupy_errors_are_recognised_by_module():
    OutOfMemoryError = type("OutOfMemoryError", (Exception,), {"__module__": "cupy.cuda.memory"})
    assert backend.is_out_of_memory(OutOfMemoryError("out of memory allocating 1 bytes"))
    assert not backend.is_out_of_memory(ValueError("x"))


# -- data layouts the examples accept ----------------------------------------------------------

def _image(path, colour=(200, 120, 90)):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 9), colour).save(path)


def _dermmel(root, splits, per_class=6, names=("Melanoma", "NotMelanoma")):
    for split in splits:
        for k, name in enumerate(names):
            for i in range(per_class):
                _image(root / split / name / f"{split}{i}.jpg", (40 + 150 * k, 90, 60))
    return root


def _open(root, fractions=(0.8, 0.1, 0.1)):
    logged = []
    parts = cli.open_data(root, (8, 6), "resize", fractions, 0, logged.append)
    return parts, " ".join(logged)


def test_dermmel_with_all_three_folders_ignores_split(tmp_path):
    (train, val, test, kind), logged = _open(_dermmel(tmp_path, ("train_sep", "valid", "test")))
    assert kind == "DermMel" and (len(train), len(val), len(test)) == (12, 12, 12)
    assert train.classes == ["NotMelanoma", "Melanoma"] and "--split is not used" in logged


def test_dermmel_without_test_cuts_it_from_train_sep(tmp_path):
    # before: train_sep/ and valid/ were taken as two classes named "train_sep" and "valid"
    (train, val, test, kind), logged = _open(_dermmel(tmp_path, ("train_sep", "valid"),
                                                      per_class=10))
    assert kind == "DermMel" and train.classes == ["NotMelanoma", "Melanoma"]
    assert len(val) == 20 and len(train) + len(test) == 20 and len(test) >= 2
    assert not set(train.paths) & set(test.paths) and "without test/" in logged
    (train, val, test, _), logged = _open(tmp_path, fractions=(0.8, 0.2))
    assert test is val and "also the test split" in logged


def test_dermmel_with_only_train_sep_and_other_letter_cases(tmp_path):
    _dermmel(tmp_path, ("Train_Sep",), per_class=10, names=("melanoma", "NotMelanoma"))
    (train, val, test, _), logged = _open(tmp_path)
    assert (len(train), len(val), len(test)) == (16, 2, 2)
    assert train.classes == ["NotMelanoma", "melanoma"] and "without valid/ and test/" in logged
    _image(tmp_path / "Valid" / "MELANOMA" / "v.jpg")
    _image(tmp_path / "Valid" / "notmelanoma" / "v.jpg")
    (train, val, test, _), _ = _open(tmp_path)
    assert len(val) == 2 and len(train) + len(test) == 20


def test_dermmel_without_train_sep_and_single_class_are_usage_errors(tmp_path):
    _dermmel(tmp_path / "a", ("valid", "test"))
    with pytest.raises(cli.UsageError, match="has valid, test but no train_sep"):
        _open(tmp_path / "a")
    _image(tmp_path / "b" / "only" / "x.jpg")
    with pytest.raises(cli.UsageError, match="at least two classes; found only one subfolder"):
        _open(tmp_path / "b")


def test_dermmel_splits_named_train_and_val_are_used_and_other_folders_named(tmp_path):
    # before: val/ was ignored without a word and valid/ cut from train_sep/ instead
    _dermmel(tmp_path, ("train_sep", "val", "test"))
    _image(tmp_path / "extra" / "Melanoma" / "x.jpg")
    (train, val, test, kind), logged = _open(tmp_path)
    assert kind == "DermMel" and (len(train), len(val), len(test)) == (12, 12, 12)
    assert "train_sep, val, test used as the train/val/test splits" in logged
    assert "extra/ in" in logged and "not used" in logged
    _dermmel(tmp_path / "b", ("Train", "Validation"))
    (train, val, test, _), logged = _open(tmp_path / "b", fractions=(0.8, 0.2))
    assert (len(train), len(val)) == (12, 12) and test is val


def test_a_dataset_one_folder_down_is_pointed_at(tmp_path):
    _dermmel(tmp_path / "DermMel", ("train_sep", "valid", "test"))
    with pytest.raises(cli.UsageError, match=f"give --data {tmp_path / 'DermMel'}"):
        _open(tmp_path)


def test_device_cuda_is_taken_as_gpu():
    assert cli.parse_args("ham", ["--device", "CUDA"]).device == "gpu"


def test_classes_absent_from_training_get_weight_zero():
    logged = []
    classes = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    w = cli._train_class_weights([5, 5, 5, 4], classes, "balanced", logged.append)
    assert w.tolist() == pytest.approx([0, 0, 0, 0, 2.0, 2 / 3, 0])  # N / (K n_c), K = 2
    assert "akiec, bcc, bkl, df, vasc" in logged[0]
    assert cli._train_class_weights([0, 1], classes[:2], "none", logged.append) is None


# -- the run folder --------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--out", "--cache"])
def test_a_file_or_uncreatable_folder_is_a_one_line_error(flag, tiny_ham, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for where, words in ((tmp_path / "file", "is a file, not a folder"),
                         (tmp_path / "file" / "sub", "cannot create the folder")):
        argv = quick(tiny_ham, tmp_path / "run") + [flag, where]
        assert run(*argv)[0] == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{flag} {where}: {words}" in err


def test_rerun_into_a_run_folder_replaces_the_earlier_run(tiny_ham, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(*quick(tiny_ham, out))[0] == 0
    (out / "weights.png").write_bytes(b"from an earlier logistic_regression run")
    (out / "notes.txt").write_text("mine")
    logged = []
    args = cli.parse_args("ham", [str(a) for a in quick(tiny_ham, out)])
    cli.run(args, "ham", log=logged.append)
    assert any("holds an earlier run; it is replaced" in line for line in logged)
    assert not (out / "weights.png").exists() and (out / "notes.txt").read_text() == "mine"
    assert (out / "metrics.json").is_file()


def test_resume_with_other_model_or_size_is_a_one_line_error(tiny_ham, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(*quick(tiny_ham, out))[0] == 0
    capsys.readouterr()
    assert run(*quick(tiny_ham, out), "--resume", "--model", "padua2")[0] == 2
    assert "trained with --model padua1, not padua2" in capsys.readouterr().err
    assert run(*quick(tiny_ham, out), "--resume", "--image-size", "32x24")[0] == 2
    assert "trained with --image-size 16x12, not 32x24" in capsys.readouterr().err
    (out / "run.json").rename(out / "run.json.away")  # the checkpoint alone must not fit
    assert run(*quick(tiny_ham, out), "--resume", "--image-size", "32x24")[0] == 2
    assert "--resume: cannot continue from" in capsys.readouterr().err
    (out / "run.json.away").rename(out / "run.json")
    (out / "checkpoint.npz").write_bytes(b"not a checkpoint")
    assert run(*quick(tiny_ham, out), "--resume")[0] == 2
    assert "--resume: cannot continue from" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()
    assert run(*quick(tiny_ham, tmp_path / "absent"), "--resume")[0] == 2
    assert not (tmp_path / "absent").exists()  # nothing made for a run that cannot resume


def test_ham10000_with_dataverse_tab_metadata_is_found(tmp_path):
    lines = ["lesion_id\timage_id\tdx\tdx_type\tage\tsex\tlocalization"]
    for i in range(6):
        lines.append(f"L{i}\tI{i}\t{('nv', 'mel', 'bkl')[i % 3]}\thisto\t50\tmale\tback")
        _image(tmp_path / "HAM10000_images_part_2" / f"I{i}.jpg")
    (tmp_path / "HAM10000_metadata.tab").write_text("\n".join(lines) + "\n")
    (train, val, test, kind), _ = _open(tmp_path, fractions=(0.5, 0.5))
    assert kind == "HAM10000" and len(train) + len(val) == 6


def test_skip_bad_leaves_out_broken_and_missing_images(ham_copy, tmp_path, capsys):
    data = ham_copy
    images = sorted(data.rglob("*.jpg"))
    images[0].write_bytes(images[0].read_bytes()[:200])       # truncated
    images[1].unlink()                                          # listed, absent
    assert run(*quick(data, tmp_path / "stop"))[0] == 2       # stops, naming a file
    assert images[1].name in capsys.readouterr().err
    with pytest.warns(UserWarning) as caught:
        assert run(*quick(data, tmp_path / "run"), "--skip-bad")[0] == 0
    said = " ".join(str(w.message) for w in caught)
    assert "skipped 1 image(s) listed" in said and images[1].stem in said
    assert "skipped 1 unreadable image(s)" in said and images[0].name in said
    assert (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize("flag", ["--data", "--out", "--cache"])
def test_an_empty_folder_flag_is_a_one_line_error(flag, capsys):
    # an empty path would quietly mean the current folder: train on it, or write runs into it
    with pytest.raises(SystemExit) as stop:
        cli.parse_args("ham", [flag, ""])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert f"argument {flag}: expected a folder path, got an empty string" in err


def test_size_and_resume_problems_are_said_before_any_image_is_read(tiny_ham, tmp_path,
                                                                      capsys, monkeypatch):
    from tinylesion import data
    out = tmp_path / "run"
    assert run(*quick(tiny_ham, out))[0] == 0
    capsys.readouterr()

    def no_reading(*_, **__):
        raise AssertionError("read the images before checking the model")

    monkeypatch.setattr(data, "channel_stats", no_reading)
    monkeypatch.setattr(data.CachedDataset, "build", no_reading)
    cache = ["--cache", tmp_path / "cache"]
    small = ["--model", "padua4", "--image-size", "8x6"]
    assert run(*quick(tiny_ham, tmp_path / "small"), *small, *cache)[0] == 2
    assert "padua4: input 8x6 is too small" in capsys.readouterr().err
    assert run(*quick(tiny_ham, out), "--resume", "--model", "padua2", *cache)[0] == 2
    assert "trained with --model padua1, not padua2" in capsys.readouterr().err
    (out / "run.json").write_text("{ not json")
    assert run(*quick(tiny_ham, out), "--resume", *cache)[0] == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"--resume: {out / 'run.json'} cannot be read" in err
