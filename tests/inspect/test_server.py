"""The inspector's server: endpoints, bad requests, loopback by default, live events; and the CLI's errors."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from deepbox.cli.main import build_parser, main
from deepbox.inspect.server import check_run, make_server
from deepbox.inspect.store import append_jsonl, load_arrays, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def server(recorded_run):
    srv = make_server(str(recorded_run), port=0)
    srv.poll_s = 0.05
    srv.start()
    yield srv
    srv.stop()


def get(srv, path, method="GET", headers=None):
    """``(status, content type, body)`` from a server or a ``(host, port)`` address."""
    addr = srv if isinstance(srv, tuple) else srv.server_address[:2]
    conn = http.client.HTTPConnection(*addr, timeout=10)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, r.getheader("Content-Type"), body


def get_json(srv, path):
    status, ctype, body = get(srv, path)
    assert ctype == "application/json", (path, ctype)
    return status, json.loads(body)


def test_page_and_static_files(server):
    status, ctype, body = get(server, "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/app.js" in body
    assert b"http://" not in body and b"https://" not in body  # nothing from the network
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("vendor/uPlot.iife.min.js", "text/javascript"), ("vendor/uPlot.min.css", "text/css"),
                       ("vendor/uPlot.LICENSE.txt", "text/plain")):
        status, ctype, body = get(server, "/static/" + name)
        assert status == 200 and ctype.startswith(kind) and body, name


def test_data_endpoints(server, recorded_run):
    status, run = get_json(server, "/api/run")
    assert status == 200 and run["name"] == "run"
    meta = run["meta"]
    assert meta["status"] == "finished" and meta["classes"] == ["cat", "dog", "bird"]
    assert [l["type"] for l in meta["layers"]] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Sigmoid",
                                                   "Linear"]
    status, steps = get_json(server, "/api/steps")
    assert status == 200 and steps["total"] == 12 and [r["step"] for r in steps["records"]] == list(range(1, 13))
    status, tail = get_json(server, "/api/steps?since=10")
    assert [r["step"] for r in tail["records"]] == [11, 12] and tail["since"] == 10
    status, epochs = get_json(server, "/api/epochs")
    assert [e["epoch"] for e in epochs["records"]] == [1, 2, 3]
    status, ep = get_json(server, "/api/epoch/2")
    assert status == 200 and ep["record"]["epoch"] == 2
    arrays = load_arrays(str(recorded_run / "inspect" / "epoch-0002.npz"))
    for k, a in arrays.items():
        got = ep["arrays"][k]
        assert got["shape"] == list(a.shape)
        assert np.array_equal(np.frombuffer(base64.b64decode(got["data"]), np.uint8).reshape(a.shape), a)
    status, code = get_json(server, "/api/code")
    assert "def backward" in code["Linear"]["ops"][0]["source"] and code["Sigmoid"]["ops"][0]["name"] == "Sigmoid"


@pytest.mark.parametrize("path,status", [
    ("/api/steps?since=-1", 400), ("/api/steps?since=abc", 400), ("/api/epoch/x", 400), ("/api/epoch/99", 404),
    ("/api/nothing", 404), ("/static/../server.py", 404), ("/static/.hidden", 404), ("/static/app.py", 404),
    ("/static/vendor/../../recorder.py", 404), ("/%2e%2e/etc/passwd", 404),
])
def test_bad_requests_get_json_errors(server, path, status):
    got, ctype, body = get(server, path)
    assert got == status and ctype == "application/json"
    assert json.loads(body)["status"] == status and json.loads(body)["error"]


def test_read_only_and_host_checked(server):
    assert get(server, "/api/events", method="HEAD")[0] == 200  # headers only, no endless stream
    status, _, body = get(server, "/api/run", method="POST")
    assert status == 405 and "read-only" in json.loads(body)["error"]
    status, _, _ = get(server, "/api/run", headers={"Host": "attacker.example:80"})
    assert status == 403  # a loopback server answers only loopback names (no DNS rebinding)
    assert get(server, "/api/run", headers={"Host": "localhost:1"})[0] == 200


def test_loopback_by_default(recorded_run):
    srv = make_server(str(recorded_run), port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1" and srv.loopback_only and srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.server_close()
    parser = build_parser()
    assert parser.parse_args(["inspect", "r"]).host == "127.0.0.1"
    assert parser.parse_args(["train", "--inspect"]).host == "127.0.0.1"


def test_events_announce_new_records(tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    srv = make_server(str(run), port=0, live=True)  # training has not written anything yet
    srv.poll_s = 0.05
    srv.start()
    try:
        sock = socket.create_connection(srv.server_address[:2], timeout=10)
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stream = sock.makefile("rb")
        assert b"200" in stream.readline()

        def next_event():
            lines = []
            while True:
                line = stream.readline()
                if line in (b"\r\n", b"\n") and lines:
                    return lines
                if line.startswith(b"data:"):
                    lines.append(json.loads(line[5:]))

        while stream.readline() not in (b"\r\n", b"\n"):  # headers
            pass
        first = next_event()[0]
        assert first == {"steps": 0, "epochs": 0, "status": None, "has_meta": False}
        assert get_json(srv, "/api/run")[1]["meta"] is None
        (run / "inspect").mkdir()
        write_json(str(run / "inspect" / "meta.json"), {"format": "deepbox.inspect/1", "status": "running"})
        append_jsonl(str(run / "inspect" / "steps.jsonl"), {"step": 1, "layers": {}})
        deadline = time.time() + 10
        while time.time() < deadline:
            ev = next_event()[0]
            if ev["steps"] == 1 and ev["has_meta"]:
                break
        assert ev == {"steps": 1, "epochs": 0, "status": "running", "has_meta": True}
        sock.close()
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- run folders
def test_check_run_names_what_is_wrong(tmp_path, recorded_run):
    check_run(str(recorded_run))
    with pytest.raises(Exception, match="does not exist"):
        check_run(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="is a file, not a run folder"):
        check_run(str(tmp_path / "file"))
    (tmp_path / "foreign").mkdir()
    with pytest.raises(Exception, match="not a deepbox run folder"):
        check_run(str(tmp_path / "foreign"))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(Exception, match="has no inspector data"):
        check_run(str(tmp_path / "plain"))
    (tmp_path / "plain" / "inspect").mkdir()
    (tmp_path / "plain" / "inspect" / "meta.json").write_text('{"format": "something else"}')
    with pytest.raises(Exception, match="is not inspector data"):
        check_run(str(tmp_path / "plain"))


def _cli_error(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("deepbox inspect: error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_cli_one_line_errors(tmp_path, capsys, recorded_run):
    assert "does not exist" in _cli_error(capsys, "inspect", tmp_path / "nope")
    (tmp_path / "foreign").mkdir()
    assert "not a deepbox run folder" in _cli_error(capsys, "inspect", tmp_path / "foreign")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "checkpoint.safetensors").write_bytes(b"")
    assert "no inspector data" in _cli_error(capsys, "inspect", tmp_path / "plain")
    assert "between 0 and 65535" in _cli_error(capsys, "inspect", recorded_run, "--port", "70000")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        err = _cli_error(capsys, "inspect", recorded_run, "--port", taken.getsockname()[1])
        assert "is in use" in err and "--port" in err
    finally:
        taken.close()


def test_cli_serves_and_prints_the_address(recorded_run):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "deepbox", "inspect", str(recorded_run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("inspector: http://127.0.0.1:"), line + proc.stderr.read()
        host, port = line.split("//")[1].strip().rstrip("/").split(":")
        status, run = get_json((host, int(port)), "/api/run")
        assert status == 200 and run["meta"]["model"] == "Sequential"
    finally:
        proc.terminate()
        proc.wait(10)


def test_train_inspect_records_serves_and_resumes_either_way(tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--model", "mlp", "--limit-train", "192", "--limit-test", "48", "--batch-size", "64", "--quiet"]
    code = main(["train", *small, "--epochs", "1", "--out", str(out), "--inspect", "--port", "0",
                 "--inspect-every", "2"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "inspector: http://127.0.0.1:" in printed and f"deepbox inspect {out}" in printed
    check_run(str(out))
    meta = json.loads((out / "inspect" / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["classes"][0] == "T-shirt/top"
    steps = [json.loads(line)["step"] for line in (out / "inspect" / "steps.jsonl").read_text().splitlines()]
    assert steps == [1, 3]  # 192 images / 64 = 3 steps, one in 2 recorded
    # the inspector keeps no state in the checkpoint: resume without it, then with it again
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "3", "--quiet", "--inspect", "--port", "0",
                 "--inspect-every", "2"]) == 0
    capsys.readouterr()
    steps = [json.loads(line)["step"] for line in (out / "inspect" / "steps.jsonl").read_text().splitlines()]
    assert steps == [1, 3, 7, 9]  # continued from optimiser step 6
    epochs = [json.loads(line)["epoch"] for line in (out / "inspect" / "epochs.jsonl").read_text().splitlines()]
    assert epochs == [1, 3]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:  # a taken port stops the command before any training
        code = main(["train", *small, "--epochs", "1", "--out", str(tmp_path / "r2"), "--inspect", "--port",
                     str(taken.getsockname()[1])])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 2 and "is in use" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r2" / "checkpoint.safetensors").exists()
    assert main(["train", *small, "--nproc", "2", "--inspect"]) == 2
    assert "does not combine with --nproc" in capsys.readouterr().err
