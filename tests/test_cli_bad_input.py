"""The examples' command line against a hostile user: run folders edited between runs, files
that are not what their flag or name says."""
import pytest

from tinylesion.data import HAM10000
from tinylesion.runfolder import STAGING, RunFolder

from example_runs import one_line, quick, run, snapshot


@pytest.mark.parametrize("name", ["weights.npz", "history.csv", "checkpoint.npz"])
@pytest.mark.parametrize("resume", [False, True])
def test_a_run_file_replaced_by_a_folder_is_refused_before_training(tiny_ham, run_copy, capsys,
                                                                    name, resume):
    out = run_copy
    (out / name).unlink()
    (out / name / "mine").mkdir(parents=True)
    before = snapshot(out)
    code, logged = run(*quick(tiny_ham, out), *(["--resume", "--epochs", "2"] if resume else []))
    err = one_line(capsys)
    assert code == 2 and f"{out / name} is a folder" in err and "move it away" in err, err
    assert not any(line.startswith("epoch") for line in logged), logged   # nothing trained
    assert snapshot(out) == before and not (out / STAGING).exists()


def test_a_folder_made_during_the_move_stops_it_before_any_file_moves(run_copy):
    out = run_copy
    folder = RunFolder(out)
    folder.staging.mkdir()
    for name in ("weights.npz", "metrics.json"):
        (folder.staging / name).write_bytes(b"new " + name.encode())
    (out / "metrics.json").unlink()
    (out / "metrics.json").mkdir()
    before = snapshot(out)
    with pytest.raises(Exception, match="metrics.json is a folder.*--resume --out"):
        folder.commit(["weights.npz", "metrics.json"])
    assert (out / "weights.npz").read_bytes() == before["weights.npz"]  # no mix of two runs
    (out / "metrics.json").rmdir()
    folder.recover(log=lambda *a: None)
    assert (out / "metrics.json").read_bytes() == b"new metrics.json"
    assert (out / "weights.npz").read_bytes() == b"new weights.npz"


@pytest.mark.parametrize("kind", ["text", "image"])
def test_pretrained_weights_that_are_no_weights_file_are_named_as_such(tiny_ham, tmp_path,
                                                                       capsys, kind):
    weights = tmp_path / "weights.pth"
    if kind == "text":
        weights.write_text("these are my notes, not weights\n")
    else:
        weights.write_bytes(sorted(tiny_ham.rglob("*.jpg"))[0].read_bytes())
    out = tmp_path / "run"
    code, _ = run(*quick(tiny_ham, out, "--pretrained", weights))
    err = one_line(capsys)
    assert code == 2 and err.endswith(
        f"--pretrained {weights}: cannot read weights: it is not a tinylesion checkpoint nor "
        "another weights file tinylesion reads (a .npz written by tl.save, a PyTorch .pt/.pth "
        "zip file or a .safetensors file)"), err
    assert "pickle" not in err and not out.exists()


@pytest.mark.parametrize("images", ["HAM10000_images_part_1", "images"])
def test_a_metadata_csv_that_is_a_folder_is_named_as_such(ham_copy, tmp_path, capsys, images):
    meta = ham_copy / "HAM10000_metadata.csv"
    meta.unlink()
    (meta / "HAM10000_metadata.csv").mkdir(parents=True)   # an unzip one level too deep
    for folder in ham_copy.glob("HAM10000_images*"):
        for image in folder.iterdir():
            (ham_copy / images).mkdir(exist_ok=True)
            image.rename(ham_copy / images / image.name)
    out = tmp_path / "run"
    code, _ = run(*quick(ham_copy, out))
    err = one_line(capsys)
    assert code == 2 and f"--data {ham_copy}: {meta} is a folder, not the metadata file" in err
    assert "ImageFolder" not in err and not out.exists()
    with pytest.raises(FileNotFoundError, match=f"^HAM10000: {meta} is a folder, not the "
                                                "metadata file$"):
        HAM10000(ham_copy)                                 # the dataset API says it too


@pytest.mark.parametrize("name", ["run.json", "weights.npz"])
def test_predict_names_a_run_file_that_is_a_folder(run_copy, tiny_ham, capsys, name):
    from tinylesion import predict
    (run_copy / name).unlink()
    (run_copy / name).mkdir()
    image = sorted(tiny_ham.rglob("*.jpg"))[0]
    assert predict.main(["--weights", str(run_copy), str(image)]) == 2
    assert one_line(capsys) == (f"error: --weights {run_copy}: {run_copy / name} is a folder, "
                                f"not the run's {name} file")


def _unfinished(out):
    """Stage an unfinished run in the run folder `out`: its epoch-1 run.json and checkpoint."""
    staging = out / STAGING
    staging.mkdir()
    for name in ("run.json", "checkpoint.npz"):
        (staging / name).write_bytes((out / name).read_bytes())
    return staging


def test_resume_continues_a_staged_unfinished_run(tiny_ham, run_copy):
    _unfinished(run_copy)   # the control of the tests below: this staging is resumed
    code, logged = run(*quick(tiny_ham, run_copy, "--resume", "--epochs", "2"))
    assert code == 0 and any("resume: the unfinished run" in line for line in logged), logged


@pytest.mark.parametrize("name", ["checkpoint.npz", "run.json", "weights.npz", "commit.json"])
def test_resume_refuses_an_unfinished_run_whose_file_is_a_folder(tiny_ham, run_copy, capsys,
                                                                 name):
    staging = _unfinished(run_copy)
    (staging / name).unlink(missing_ok=True)
    (staging / name / "mine").mkdir(parents=True)
    before = snapshot(run_copy)
    code, logged = run(*quick(tiny_ham, run_copy, "--resume", "--epochs", "2"))
    err = one_line(capsys)
    assert code == 2 and f"{staging / name} is a folder" in err, err
    assert f"remove {staging} to continue the finished run" in err, err
    assert not any(line.startswith("epoch") for line in logged), logged   # nothing trained
    assert snapshot(run_copy) == before and (staging / name / "mine").is_dir()


def test_resume_refuses_an_unfinished_run_whose_checkpoint_is_a_broken_link(tiny_ham, run_copy,
                                                                           capsys):
    staging = _unfinished(run_copy)
    (staging / "checkpoint.npz").unlink()
    (staging / "checkpoint.npz").symlink_to(staging / "gone.npz")
    before = snapshot(run_copy)
    assert run(*quick(tiny_ham, run_copy, "--resume", "--epochs", "2"))[0] == 2
    err = one_line(capsys)
    assert f"{staging / 'checkpoint.npz'} is not a file" in err, err
    assert snapshot(run_copy) == before and (staging / "checkpoint.npz").is_symlink()


@pytest.mark.parametrize("name, says", [("checkpoint.npz", "cannot continue from"),
                                        ("run.json", "")])
def test_resume_refuses_an_unfinished_run_whose_file_is_corrupt(tiny_ham, run_copy, capsys,
                                                                name, says):
    staging = _unfinished(run_copy)
    (staging / name).write_bytes(b"\x00garbage, not the run's file")
    before = snapshot(run_copy)
    code, logged = run(*quick(tiny_ham, run_copy, "--resume", "--epochs", "2"))
    err = one_line(capsys)
    assert code == 2 and str(staging / name) in err and says in err, err
    assert not any(line.startswith("epoch") for line in logged), logged
    assert snapshot(run_copy) == before
