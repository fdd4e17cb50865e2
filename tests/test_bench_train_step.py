"""bench/train_step.py's plan of measurements: which models, batches and step counts the flags
ask for (the benchmark itself needs PyTorch and runs outside the tests)."""
import os
import sys

import pytest

# NOTE: appended, not inserted first: bench/kernels.py must not shadow the kernels package
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import train_step  # noqa: E402


def plan(*argv):
    cases = train_step.plan_cases(train_step.parse_args(list(argv)))
    return [(c.name, c.batch, c.warmup, c.steps, c.mode, c.num_classes) for c in cases]


def test_all_is_the_seed_cnns_and_backbones_take_fewer_steps():
    assert plan("--all") == [(n, 32, 2, 7, "train", None)
                             for n in ("padua4", "baseline_cnn", "melanoma_cnn")]
    assert plan("--backbones") == [(n, 32, 1, 3, "train", 1000)
                                   for n in ("resnet50", "mobilenet_v2", "densenet121")]
    assert plan("--backbones", "--steps", "5", "--warmup", "2",
                "--num-classes", "7")[0] == ("resnet50", 32, 2, 5, "train", 7)


def test_inference_table_has_batch_64_and_resnet50_latency():
    assert plan("--inference") == [
        ("padua4", 64, 2, 7, "inference", None), ("baseline_cnn", 64, 2, 7, "inference", None),
        ("melanoma_cnn", 64, 2, 7, "inference", None), ("resnet50", 64, 1, 3, "inference", 1000),
        ("resnet50", 1, 3, 20, "inference", 1000)]
    assert plan("--inference", "--model", "padua4", "--batch-size", "8") == [
        ("padua4", 8, 2, 7, "inference", None)]


@pytest.mark.parametrize("argv", [["--loop", "--inference"], ["--loop", "--no-torch"],
                                  ["--warmup", "0"], ["--all", "--backbones"],
                                  ["--loop", "--torch-omp-passive"], ["--num-classes", "1"],
                                  ["--settle-ms", "-1"]])
def test_flags_that_do_not_go_together_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        train_step.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_each_timed_step_waits_for_the_previous_engine_to_settle():
    assert train_step.parse_args([]).settle_ms == 50.0
    assert train_step.parse_args(["--settle-ms", "0"]).settle_ms == 0.0
