"""python -m tinylesion.serve: every route, every bad input, predict's numbers, many clients."""
import http.client
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the service needs: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the service needs: pip install -e '.[serve]'")

from tinylesion import cli, predict  # noqa: E402
from tinylesion.data import make_synthetic  # noqa: E402
from tinylesion.serve import Batcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_runs(base):
    """Two small finished runs: 'ham' (padua1, 7 classes) and 'mel' (binary, one logit)."""
    ham = make_synthetic(base / "ham-data", n=40, seed=1, image_size=(48, 36))
    args = cli.parse_args("ham", ["--data", str(ham), "--model", "padua1", "--epochs", "1",
                                  "--image-size", "24x16", "--batch-size", "8", "--workers",
                                  "0", "--out", str(base / "ham")])
    cli.run(args, "ham", log=lambda *a: None)
    mel = make_synthetic(base / "mel-data", n=20, seed=0, layout="dermmel", image_size=(32, 24))
    args = cli.parse_args("logistic", ["--data", str(mel), "--epochs", "1", "--image-size",
                                       "16x12", "--workers", "0", "--out", str(base / "mel")])
    cli.run(args, "logistic", log=lambda *a: None)
    return base / "ham", base / "mel", sorted(ham.glob("*/*.jpg"))


class Server:
    """`python -m tinylesion.serve` in a subprocess on a free loopback port."""

    def __init__(self, *args, timeout=240):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinylesion.serve", *map(str, args), "--port",
             str(self.port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server stopped:\n" + "".join(self.lines))
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start:\n" + "".join(self.lines))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None):
        status, head, data = self.request(method, path, body, headers)
        assert head["content-type"].startswith("application/json"), (status, data[:200])
        return status, json.loads(data)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(runs):
    ham, mel, _ = runs
    s = Server("--weights", ham, mel, "--max-batch", "8", "--max-wait-ms", "50")
    yield s
    s.stop()


def multipart(data, field="file", filename="lesion.jpg"):
    boundary = "tinylesion-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# ---- the routes ----------------------------------------------------------------------------------
def test_predict_gives_predicts_numbers_as_raw_body_and_multipart(server, runs):
    ham, mel, images = runs
    model, run = predict.load_run(ham)
    expected = predict.predict_files(model, run, images[:4])
    for path, probs in zip(images[:4], expected):
        data = path.read_bytes()
        status, raw = server.json("POST", "/predict", data, {"Content-Type": "image/jpeg"})
        assert status == 200
        status, form = server.json("POST", "/predict", *multipart(data))
        assert status == 200
        for answer in (raw, form):
            got = np.array([answer["probabilities"][c] for c in run["class_names"]])
            np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)
            assert answer["class"] == run["class_names"][int(probs.argmax())]
            assert answer["confidence"] == pytest.approx(probs.max(), abs=1e-6)
            assert answer["model"] == "ham" and answer["time_ms"] > 0


def test_large_and_png_images_decoded_in_the_thread_pool_give_predicts_numbers(server, runs,
                                                                              tmp_path):
    from tinylesion.serve.runs import QUICK_JPEG_PIXELS, check_image, quick_to_decode
    ham, _, images = runs
    model, run = predict.load_run(ham)
    pixels = np.asarray(Image.open(images[5]).convert("RGB").resize((1200, 900)))
    paths = []
    for kind in ("JPEG", "PNG"):
        path = tmp_path / f"large.{kind.lower()}"
        Image.fromarray(pixels).save(path, kind)
        data = path.read_bytes()
        assert check_image(data) == (kind, 1200, 900) and not quick_to_decode(check_image(data))
        paths.append(path)
    assert 1200 * 900 > QUICK_JPEG_PIXELS and quick_to_decode(check_image(images[5].read_bytes()))
    for path, probs in zip(paths, predict.predict_files(model, run, paths)):
        status, answer = server.json("POST", "/predict", path.read_bytes())
        assert status == 200
        got = np.array([answer["probabilities"][c] for c in run["class_names"]])
        np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)


def test_several_runs_have_their_own_routes(server, runs):
    ham, mel, images = runs
    model, run = predict.load_run(mel)
    expected = predict.predict_files(model, run, images[:1])[0]
    status, answer = server.json("POST", "/models/mel/predict", images[0].read_bytes())
    assert status == 200 and answer["model"] == "mel"
    assert list(answer["probabilities"]) == run["class_names"]
    assert sorted(run["class_names"]) == ["Melanoma", "NotMelanoma"]
    np.testing.assert_allclose(list(answer["probabilities"].values()), expected, atol=1e-6)
    status, answer = server.json("POST", "/models/ham/predict", images[0].read_bytes())
    assert status == 200 and answer["model"] == "ham"
    status, answer = server.json("POST", "/models/nope/predict", images[0].read_bytes())
    assert status == 404 and "no model 'nope'" in answer["error"] and "ham, mel" in answer["error"]


def test_models_and_health(server, runs):
    ham, mel, _ = runs
    status, info = server.json("GET", "/models")
    assert status == 200 and info["default"] == "ham"
    by_name = {m["name"]: m for m in info["models"]}
    assert by_name["ham"]["model"] == "padua1" and by_name["ham"]["input_size"] == [24, 16]
    assert by_name["ham"]["classes"] == json.loads((ham / "run.json").read_text())["class_names"]
    metrics = json.loads((ham / "metrics.json").read_text())
    assert by_name["ham"]["test_metrics"]["accuracy"] == metrics["accuracy"]
    assert by_name["mel"]["binary"] is True and by_name["mel"]["input_size"] == [16, 12]
    status, health = server.json("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["models"] == ["ham", "mel"]
    assert health["process"] == server.proc.pid     # one process answers (no --workers)
    # one kernel thread in the server unless TINYLESION_NUM_THREADS says otherwise
    assert health["threads"] == int(os.environ.get("TINYLESION_NUM_THREADS", "").strip() or 1)
    # with no --host it listens on the loopback only
    assert any(f"running on http://127.0.0.1:{server.port}" in line for line in server.lines)


def test_explain_gives_a_png_for_the_predicted_or_asked_class(server, runs):
    ham, _, images = runs
    data = images[1].read_bytes()
    status, head, png = server.request("POST", "/explain", data)
    assert status == 200 and head["content-type"] == "image/png"
    _, predicted = server.json("POST", "/predict", data)
    assert head["x-explained-class"] == predicted["class"]
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == (24 * 14, 16 * 14)
    model, run = predict.load_run(ham)
    from kernels import threads
    from tinylesion.explain import explain_image
    # NOTE: on the server's thread count: a batch of one takes another convolution path below
    # the thread count, so the last bits (and now and then a pixel) depend on it
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(int(os.environ.get("TINYLESION_NUM_THREADS", "").strip() or 1))
        expected, _ = explain_image(model, run, data, target=run["class_names"].index("mel"))
    finally:
        threads.set_num_threads(before)
    status, head, other = server.request("POST", "/explain?class=mel", *multipart(data))
    assert status == 200 and head["x-explained-class"] == "mel"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(other))), expected)
    status, head, _ = server.request("POST", "/models/mel/explain?class=Melanoma", data)
    assert status == 200 and head["x-explained-class"] == "Melanoma"
    status, answer = server.json("POST", "/explain?class=tumour", data)
    assert status == 400 and "unknown class 'tumour'" in answer["error"]
    assert "akiec" in answer["error"]
    status, answer = server.json("POST", "/explain?colour=red", data)
    assert status == 400 and "'colour'" in answer["error"]


def test_the_page(server):
    status, head, page = server.request("GET", "/")
    assert status == 200 and head["content-type"].startswith("text/html")
    text = page.decode()
    for needle in ("Research software", 'type="file"', 'route("explain")', 'route("predict")',
                   "/models", "drop"):
        assert needle in text


# ---- bad input: a 4xx JSON error that names the problem, and the server goes on ------------------
def big_png(width, height):
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_bad_images_are_4xx_json_errors(server, runs):
    _, _, images = runs
    data = images[2].read_bytes()
    cases = [
        (b"", 400, "empty body"),
        (b"<html>not an image</html>", 400, "not an image"),
        (data[: len(data) // 2], 400, "truncated or damaged"),
        (data[:40], 400, "truncated or damaged JPEG"),
        (big_png(10000, 6000), 400, "10000x6000 pixels is over the limit"),
    ]
    for body, code, message in cases:
        for route in ("/predict", "/explain"):
            status, answer = server.json("POST", route, body)
            assert status == code and message in answer["error"], (route, message, answer)
    status, answer = server.json("POST", "/predict", *multipart(data, field="image"))
    assert status == 400 and "without a 'file' field (fields: note, image)" in answer["error"]
    status, answer = server.json("POST", "/predict", b"--x--",
                                 {"Content-Type": "multipart/form-data"})
    assert status == 400 and "multipart" in answer["error"]
    assert server.json("POST", "/predict", data)[0] == 200   # still serving


def test_routes_and_methods(server):
    status, answer = server.json("GET", "/predict")
    assert status == 405 and answer["error"] == "method GET is not allowed on /predict"
    status, answer = server.json("DELETE", "/models")
    assert status == 405 and "DELETE" in answer["error"]
    status, answer = server.json("POST", "/classify", b"x")
    assert status == 404 and "no route /classify" in answer["error"]


def read_reply(sock):
    """One HTTP reply read from a socket: its head, then as many body bytes as it declares (the
    head and the body may arrive in separate reads)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-length:")]
    while length and len(body) < length[0]:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_a_body_over_20_mb_is_413(server):
    limit = 20 * 1024 * 1024
    # declared too large: refused from the header, before the body is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % (limit + 1))
        reply = read_reply(s)
    assert reply.startswith("HTTP/1.1 413") and "over the limit of 20,971,520 bytes" in reply
    # sent in chunks with no declared length: refused once it passes the limit

    def chunks():
        block = b"\0" * (1 << 20)
        for _ in range(21):
            yield block

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("POST", "/predict", body=chunks(), encode_chunked=True)
        answer = conn.getresponse()
        status, text = answer.status, answer.read().decode()
    except (BrokenPipeError, ConnectionResetError):   # it may stop reading once it has said no
        status, text = 413, "over the limit"
    finally:
        conn.close()
    assert status == 413 and "over the limit" in text
    assert server.json("GET", "/health")[0] == 200


# ---- many clients at once ------------------------------------------------------------------------
def test_concurrent_clients_are_batched_and_each_gets_its_answer(server, runs):
    ham, _, images = runs
    model, run = predict.load_run(ham)
    paths = images[:16]
    expected = predict.predict_files(model, run, paths)
    before = server.json("GET", "/health")[1]["batching"]["ham"]

    def client(i):
        out = []
        for _ in range(3):
            status, answer = server.json("POST", "/predict", paths[i].read_bytes())
            out.append((status, answer))
        return i, out

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(client, range(16)))
    for i, answers in results:
        for status, answer in answers:
            assert status == 200
            got = np.array([answer["probabilities"][c] for c in run["class_names"]])
            np.testing.assert_allclose(got, expected[i], rtol=1e-5, atol=1e-6)
    after = server.json("GET", "/health")[1]["batching"]["ham"]
    requests = after["requests"] - before["requests"]
    passes = after["forward_passes"] - before["forward_passes"]
    assert requests == 48 and passes < requests and after["largest_batch"] <= 8
    assert after["largest_batch"] > 1


def test_several_worker_processes_answer_on_one_port(runs):
    ham, mel, images = runs
    model, run = predict.load_run(ham)
    expected = predict.predict_files(model, run, images[:6])
    server = Server("--weights", ham, mel, "--workers", "2")
    try:
        processes = set()
        deadline = time.monotonic() + 180    # the second may still be starting
        while len(processes) < 2 and time.monotonic() < deadline:
            status, answer = server.json("GET", "/health")   # a new connection each time,
            assert status == 200 and answer["models"] == ["ham", "mel"]   # to either process
            assert answer["threads"] == int(os.environ.get("TINYLESION_NUM_THREADS", "") or 1)
            processes.add(answer["process"])
            time.sleep(0.05)
        assert len(processes) == 2 and server.proc.pid not in processes
        for path, probs in zip(images[:6], expected):
            status, answer = server.json("POST", "/predict", path.read_bytes())
            assert status == 200 and answer["model"] == "ham"
            got = np.array([answer["probabilities"][c] for c in run["class_names"]])
            np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)
        status, answer = server.json("POST", "/models/mel/predict", images[0].read_bytes())
        assert status == 200 and answer["model"] == "mel"
    finally:
        server.stop()
    assert server.proc.returncode == 0
    time.sleep(1)
    for pid in processes if Path("/proc").is_dir() else ():   # the workers ended with it
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text().lower(), pid


def test_batcher_collects_waits_and_passes_errors():
    seen = []

    def run_batch(items):
        seen.append(list(items))
        if "bad" in items:
            raise ValueError("bad item")
        return [x * 2 for x in items]

    b = Batcher(run_batch, max_batch=3, max_wait=0.2)
    futures = [b.submit(i) for i in range(5)]
    assert [f.result(10) for f in futures] == [0, 2, 4, 6, 8]
    assert [len(s) for s in seen] == [3, 2]      # at most max_batch, the rest waited for
    start = time.monotonic()
    assert b.submit(7).result(10) == 14
    assert 0.15 < time.monotonic() - start < 5   # a lone item waits max_wait, then goes alone
    bad, good = b.submit("bad"), b.submit(1)
    with pytest.raises(ValueError, match="bad item"):
        bad.result(10)
    with pytest.raises(ValueError, match="bad item"):  # it shared the batch
        good.result(10)
    assert b.submit(2).result(10) == 4             # and the worker goes on
    b.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        b.submit(1)
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(run_batch, max_batch=0)


def test_batcher_runs_a_full_batch_at_once_and_finishes_the_queue_when_stopped():
    seen = []
    b = Batcher(lambda items: seen.append(len(items)) or list(items), max_batch=4, max_wait=60)
    start = time.monotonic()
    futures = [b.submit(i) for i in range(4)]           # a full batch does not wait max_wait
    assert [f.result(30) for f in futures] == [0, 1, 2, 3]
    assert time.monotonic() - start < 30 and seen == [4]
    futures = [b.submit(i) for i in range(6)]           # 4 at once, 2 waiting for more ...
    assert [f.result(30) for f in futures[:4]] == [0, 1, 2, 3]
    b.stop()                                             # ... go when the batcher stops
    assert [f.result(0) for f in futures[4:]] == [4, 5] and seen == [4, 4, 2]
    assert time.monotonic() - start < 30


# ---- an unexpected failure is a 500 without a traceback ------------------------------------------
class InProcess:
    """The app of `models` served by uvicorn in a thread of this process (for tests that patch
    what the server does)."""

    def __init__(self, models):
        import uvicorn
        from tinylesion.serve import create_app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(models), host="127.0.0.1",
                                                    port=self.port, log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    def post(self, path, body, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("POST", path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()


def test_an_unexpected_failure_is_a_500_json_and_the_traceback_is_logged(runs, caplog):
    from tinylesion.serve import load_models
    ham, _, images = runs
    models = load_models([ham])

    def broken(batch):
        raise RuntimeError("kernel exploded")

    models["ham"].probabilities = broken
    with InProcess(models) as server, caplog.at_level(logging.ERROR,
                                                      logger="tinylesion.serve"):
        status, body = server.post("/predict", images[0].read_bytes())
        body = body.decode()
    assert status == 500
    assert json.loads(body) == {
        "error": "internal server error (the traceback is in the server's log)"}
    assert "Traceback" not in body and "kernel exploded" not in body
    assert "kernel exploded" in caplog.text


def test_nothing_a_client_sends_is_written_to_disk(runs, monkeypatch):
    """Every file opened for writing while the server answers large uploads (over the 1 MB
    at which form parsers spool to temporary files) is recorded: there must be none."""
    import builtins
    import tempfile
    from tinylesion.serve import load_models
    ham, _, _ = runs
    models = load_models([ham])
    pixels = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    big = buffer.getvalue()
    assert len(big) > 3_000_000
    writes = []
    real_open, real_os_open = builtins.open, os.open

    def watched_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            writes.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def watched_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    def refused(*args, **kwargs):
        writes.append("a temporary file")
        raise OSError("no temporary files while serving")

    with InProcess(models) as server:
        # NOTE: one request of each kind first, so that kernels Numba compiles for this size
        # and writes to its cache (on a fresh cache) are not taken for the client's data
        server.post("/predict", big)
        server.post("/explain", *multipart(big, filename="big.png"))
        monkeypatch.setattr(builtins, "open", watched_open)
        monkeypatch.setattr(os, "open", watched_os_open)
        for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile",
                     "mkstemp"):
            monkeypatch.setattr(tempfile, name, refused)
        answers = [server.post("/predict", *multipart(big, filename="big.png")),
                   server.post("/predict", big),
                   server.post("/explain", *multipart(big, filename="big.png"))]
        monkeypatch.undo()
    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert writes == []


# ---- the command line: one-line errors before anything listens -----------------------------------
def run_serve(*args):
    return subprocess.run([sys.executable, "-m", "tinylesion.serve", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


def test_bad_flags_and_run_folders_are_one_line_errors(runs, tmp_path):
    ham, mel, _ = runs
    twin = tmp_path / "x" / "ham"
    twin.mkdir(parents=True)
    for name in ("run.json", "weights.npz"):
        (twin / name).write_bytes((ham / name).read_bytes())
    cases = [
        ((), "the following arguments are required: --weights"),
        (("--weights", tmp_path / "nope"), "no such run folder"),
        (("--weights", ham, "--port", "70000"), "--port: must be at most 65535"),
        (("--weights", ham, "--port", "http"), "--port: expected an integer"),
        (("--weights", ham, "--max-batch", "0"), "--max-batch: must be >= 1"),
        (("--weights", ham, "--max-wait-ms", "-1"), "--max-wait-ms: must be from 0"),
        (("--weights", ham, "--workers", "0"), "--workers: must be >= 1"),
        (("--weights", ham, "--device", "tpu"), "choose a device from cpu, gpu, auto"),
        (("--weights", ham, twin), "two run folders are named 'ham'"),
    ]
    for args, message in cases:
        proc = run_serve(*args)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and message in err and "\n" not in err, (args, err)
        assert "Uvicorn running" not in proc.stderr + proc.stdout
