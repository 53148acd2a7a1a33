"""The inspector's web server: a run folder's recorder files as a live page.

Standard library only (``http.server.ThreadingHTTPServer``). The page (``static/``: HTML, JS,
CSS and the vendored uPlot chart library) needs nothing from the network. It asks for:

* ``GET /api/run``: the run's ``meta.json`` (``null`` until the recorder writes it), its
  ``config.json`` when it has one, and its name;
* ``GET /api/steps?since=K`` and ``GET /api/epochs?since=K``: the records after the K-th;
* ``GET /api/epoch/N``: epoch N's images (uint8 arrays as base64) and its record;
* ``GET /api/code``: per layer type, the docstring and the reference op's source;
* ``GET /api/events``: Server-Sent Events; an ``update`` event (record counts and status)
  whenever the files grow, so the page fetches what is new.

It listens on 127.0.0.1 unless told otherwise, and then answers only requests addressed to a
loopback name (a page elsewhere cannot reach it through DNS rebinding). Bad requests get a JSON
error with status 400, 404 or 405.
"""
from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

from deepbox.inspect import store

__all__ = ["InspectError", "check_run", "RunReader", "make_server", "InspectServer", "STATIC_DIR"]

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}


class InspectError(Exception):
    """A run folder that cannot be inspected; the message says why and what was expected."""


def check_run(run_dir: str, live: bool = False) -> None:
    """Raise ``InspectError`` unless ``run_dir`` holds inspector data (or, ``live``, is a folder)."""
    if not os.path.exists(run_dir):
        raise InspectError(f"run folder {run_dir!r} does not exist; expected a folder written by 'deepbox train' "
                           "with --inspect, or by deepbox.inspect.watch / Inspector")
    if not os.path.isdir(run_dir):
        raise InspectError(f"{run_dir!r} is a file, not a run folder")
    if live:
        return
    meta = os.path.join(store.inspect_dir(run_dir), "meta.json")
    if not os.path.isfile(meta):
        if any(os.path.exists(os.path.join(run_dir, f)) for f in ("config.json", "checkpoint.safetensors",
                                                                  "history.json")):
            raise InspectError(f"run folder {run_dir!r} has no inspector data (no inspect/meta.json); train with "
                               "'deepbox train --inspect', or record with deepbox.inspect.Inspector or watch()")
        raise InspectError(f"{run_dir!r} is not a deepbox run folder (no inspect/meta.json, config.json or "
                           "checkpoint); expected a folder written by 'deepbox train --inspect' or "
                           "deepbox.inspect.watch")
    try:
        doc = store.read_json(meta)
    except (OSError, ValueError) as e:
        raise InspectError(f"{meta} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != store.FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InspectError(f"{meta} is not inspector data (format {found!r}, expected {store.FORMAT!r})")


class RunReader:
    """The run's records, read incrementally (each file from where the last read stopped)."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.dir = store.inspect_dir(run_dir)
        self._lock = threading.Lock()
        self._records = {"steps": [], "epochs": []}
        self._offsets = {"steps": 0, "epochs": 0}

    def records(self, kind: str) -> list:
        with self._lock:
            new, off = store.read_jsonl(os.path.join(self.dir, f"{kind}.jsonl"), self._offsets[kind])
            if new:
                self._records[kind].extend(new)
            self._offsets[kind] = off
            return self._records[kind]

    def _json(self, path: str):
        try:
            return store.read_json(path)
        except (OSError, ValueError):
            return None

    def meta(self):
        return self._json(os.path.join(self.dir, "meta.json"))

    def code(self):
        return self._json(os.path.join(self.dir, "code.json")) or {}

    def run_info(self) -> dict:
        return {"name": os.path.basename(os.path.abspath(self.run_dir)), "meta": self.meta(),
                "config": self._json(os.path.join(self.run_dir, "config.json"))}

    def epoch(self, n: int) -> dict | None:
        rec = next((e for e in self.records("epochs") if e.get("epoch") == n), None)
        if rec is None:
            return None
        out = {"record": rec, "arrays": {}}
        name = rec.get("arrays")
        if name and re.fullmatch(r"epoch-\d+\.npz", name):
            try:
                arrays = store.load_arrays(os.path.join(self.dir, name))
            except (OSError, ValueError):
                arrays = {}
            for k, a in arrays.items():
                a = np.ascontiguousarray(a, dtype=np.uint8)
                out["arrays"][k] = {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}
        return out

    def signature(self) -> tuple:
        """What changes when the recorder writes something."""
        sig = []
        for f in ("meta.json", "steps.jsonl", "epochs.jsonl"):
            try:
                st = os.stat(os.path.join(self.dir, f))
                sig.append((st.st_size, st.st_mtime_ns))
            except OSError:
                sig.append(None)
        return tuple(sig)


class _Handler(BaseHTTPRequestHandler):
    server: InspectServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:  # quiet: the terminal belongs to the training run
        pass

    # ------------------------------------------------------------------ replies
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, doc, status: int = 200) -> None:
        self._send(status, json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message, "status": status}, status)

    # ------------------------------------------------------------------ routing
    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
        return name in LOOPBACK_NAMES

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._host_ok():
            return self._error(403, "this server answers only requests addressed to 127.0.0.1 or localhost")
        url = urlsplit(self.path)
        path = url.path
        try:
            query = parse_qs(url.query, strict_parsing=False, max_num_fields=8)
        except ValueError:
            return self._error(400, "malformed query string")
        reader = self.server.reader
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/run":
            return self._json(reader.run_info())
        if path in ("/api/steps", "/api/epochs"):
            since = self._int_param(query, "since", 0)
            if since is None:
                return None
            recs = reader.records(path.rsplit("/", 1)[1])
            return self._json({"since": since, "total": len(recs), "records": recs[since:]})
        m = re.fullmatch(r"/api/epoch/([^/]+)", path)
        if m:
            if not m.group(1).isdigit():
                return self._error(400, f"epoch must be a positive integer, got {m.group(1)!r}")
            doc = reader.epoch(int(m.group(1)))
            if doc is None:
                return self._error(404, f"epoch {int(m.group(1))} has not been recorded")
            return self._json(doc)
        if path == "/api/code":
            return self._json(reader.code())
        if path == "/api/events":
            return self._events()
        return self._error(404, f"no such page or endpoint: {path}")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _not_allowed(self) -> None:
        self._send(405, json.dumps({"error": f"{self.command} is not allowed; the inspector is read-only",
                                    "status": 405}).encode(), "application/json", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def _int_param(self, query: dict, name: str, default: int) -> int | None:
        values = query.get(name)
        if not values:
            return default
        v = values[-1]
        if not v.isdigit():
            self._error(400, f"{name} must be a non-negative integer, got {v!r}")
            return None
        return int(v)

    def _static(self, name: str) -> None:
        # only plain names under static/ (and its vendor/ folder): no traversal, no hidden files
        if not re.fullmatch(r"(vendor/)?[A-Za-z0-9_.-]+", name) or name.startswith(".") or ".." in name:
            return self._error(404, f"no such file: {name}")
        path = os.path.join(STATIC_DIR, name)
        ext = os.path.splitext(name)[1]
        if not os.path.isfile(path) or ext not in _STATIC_TYPES:
            return self._error(404, f"no such file: {name}")
        with open(path, "rb") as f:
            body = f.read()
        self._send(200, body, _STATIC_TYPES[ext])

    def _events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        reader, srv = self.server.reader, self.server
        last, last_beat = None, time.monotonic()
        try:
            while not srv.stopping.is_set():
                sig = reader.signature()
                if sig != last:
                    last = sig
                    meta = reader.meta()
                    doc = {"steps": len(reader.records("steps")), "epochs": len(reader.records("epochs")),
                           "status": meta.get("status") if isinstance(meta, dict) else None,
                           "has_meta": meta is not None}
                    self.wfile.write(f"event: update\ndata: {json.dumps(doc)}\n\n".encode())
                    self.wfile.flush()
                    last_beat = time.monotonic()
                elif time.monotonic() - last_beat > 10:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    last_beat = time.monotonic()
                srv.stopping.wait(srv.poll_s)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass


class InspectServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` for one run folder; ``url`` is where the page is."""

    daemon_threads = True
    allow_reuse_address = True  # a port in TIME_WAIT is free; one with a listener still is not
    allow_reuse_port = False  # never share a port with another listener

    def __init__(self, run_dir: str, host: str = "127.0.0.1", port: int = 0, poll_s: float = 0.5) -> None:
        self.reader = RunReader(run_dir)
        self.stopping = threading.Event()
        self.poll_s = poll_s
        self.loopback_only = host in LOOPBACK_NAMES or host.startswith("127.")
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (for a training run); ``stop()`` ends it."""
        t = threading.Thread(target=self.serve_forever, name="deepbox-inspect", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        """End a server started with ``start()`` (waits for its loop to finish)."""
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def close(self) -> None:
        """Release a server whose ``serve_forever`` already returned (Ctrl-C)."""
        self.stopping.set()
        self.server_close()


def make_server(run_dir: str, host: str = "127.0.0.1", port: int = 8765, live: bool = False) -> InspectServer:
    """Check the run folder and bind the server (``OSError`` when the port is taken)."""
    check_run(run_dir, live=live)
    return InspectServer(run_dir, host, port)
