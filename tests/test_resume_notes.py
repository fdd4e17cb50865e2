"""The line a resumed run logs about what it changes: per-rank batches under --distributed."""
from tinylesion.resume import describe_changes


def test_one_process_says_the_flags_as_before():
    line = describe_changes({"batch_size": (32, 16), "epochs": (2, 3)}, 1)
    assert line == ("resume: from epoch 2 on, --batch-size 16 (was 32), --epochs 3 (was 2); "
                    "the resumed run will not repeat an uninterrupted one")
    assert describe_changes({}, 1) is None


def test_other_ranks_at_the_same_global_batch_repeat_the_run():
    line = describe_changes({"batch_size": (7, 14)}, 0, ranks=(2, 1), batch_size=14)
    assert line == ("resume: from epoch 1 on, --batch-size 14 per rank on 1 rank(s), 14 per "
                    "step (was 7 on 2: 14 per step)")


def test_other_ranks_at_the_same_per_rank_batch_change_the_global_batch():
    line = describe_changes({}, 0, ranks=(1, 2), batch_size=16)
    assert line == ("resume: from epoch 1 on, --batch-size 16 per rank on 2 rank(s), 32 per "
                    "step (was 16 on 1: 16 per step); the resumed run will not repeat an "
                    "uninterrupted one")


def test_the_same_ranks_and_batch_say_nothing_about_the_batch():
    assert describe_changes({}, 3, ranks=(2, 2), batch_size=16) is None
    line = describe_changes({"batch_size": (16, 8)}, 3, ranks=(2, 2), batch_size=8)
    assert "8 per rank on 2 rank(s), 16 per step (was 16 on 2: 32 per step)" in line
    assert line.endswith("will not repeat an uninterrupted one")
