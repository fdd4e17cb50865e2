"""The examples' command line against a hostile user: run folders edited between runs."""
import pytest

from tinylesion.runfolder import STAGING, RunFolder

from example_runs import one_line, quick, run, snapshot


@pytest.mark.parametrize("name", ["weights.npz", "history.csv"])
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
