"""python -m tinylesion.serve: flags a hostile user gets wrong, checked before any run loads;
multipart bodies whose file field is empty or unnamed."""
import socket

import pytest

pytest.importorskip("uvicorn", reason="the service needs: pip install -e '.[serve]'")

from tinylesion.serve.__main__ import main, parse_args  # noqa: E402


def one_line_exit(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err, err
    return err


def test_weights_given_twice_serves_both_runs():
    _, args = parse_args(["--weights", "a", "b", "--weights", "c"])
    assert args.weights == ["a", "b", "c"]


def test_a_port_in_use_is_a_one_line_error_naming_the_flag(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = one_line_exit(["--weights", str(tmp_path), "--port", str(port)], capsys)
    assert f"argument --port: cannot listen on 127.0.0.1:{port}" in err


def test_an_unknown_host_is_a_one_line_error_naming_the_flag(tmp_path, capsys):
    err = one_line_exit(["--weights", str(tmp_path), "--host", "999.1.1.1", "--port", "0"],
                        capsys)
    assert "argument --host: cannot listen on '999.1.1.1'" in err


@pytest.mark.parametrize("part, words", [
    (b'Content-Disposition: form-data; name="file"\r\n\r\n',
     "the multipart field 'file' is empty: it must hold the bytes of an image file"),
    (b'Content-Type: multipart/mixed; boundary=c\r\nContent-Disposition: form-data; '
     b'name="file"\r\n\r\n--c\r\n\r\nxx\r\n--c--',
     "the multipart field 'file' is empty"),
    (b"Content-Disposition: form-data\r\n\r\nxx",
     "multipart body without a 'file' field (fields: (no name))"),
])
def test_an_empty_or_unnamed_multipart_field_is_named_not_called_an_empty_body(part, words):
    pytest.importorskip("fastapi", reason="the service needs: pip install -e '.[serve]'")
    from tinylesion.serve.app import image_bytes
    from tinylesion.serve.runs import BadRequest
    body = b"--b\r\n" + part + b"\r\n--b--\r\n"
    with pytest.raises(BadRequest) as refused:
        image_bytes(body, "multipart/form-data; boundary=b")
    assert str(refused.value).startswith(words), str(refused.value)
    filled = b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nJPEG\r\n--b--\r\n'
    assert image_bytes(filled, "multipart/form-data; boundary=b") == b"JPEG"
