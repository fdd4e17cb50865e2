"""The examples' one-line errors for device problems and for running out of memory."""
import pytest

from tinylesion import backend, cli


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
