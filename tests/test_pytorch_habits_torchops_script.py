"""A metric-learning script in PyTorch's idioms (tests/pytorch_scripts/cosine_digits.py:
GroupNorm, PReLU, ELU, an Embedding of prototypes, F.normalize, einsum, scatter_, bincount,
torch.norm, index_select, nonzero, unique) trains with only its imports naming tinylesion."""
from test_pytorch_habits_scripts import run_script


def test_cosine_classifier_script_trains(monkeypatch, capsys):
    namespace, accuracy = run_script("cosine_digits.py", ["--epochs", "3"], monkeypatch)
    out = capsys.readouterr().out
    assert out.count("gradient norm") == 3 and "classes predicted [0, 1, 2" in out, out
    assert accuracy > 0.8, out   # PyTorch's run of the same script: 0.925
    model = namespace["CosineNet"]()
    assert [type(m).__name__ for m in model.features][1:3] == ["GroupNorm", "PReLU"]
