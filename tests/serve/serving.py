"""Helpers of the server tests: small request limits, and `running(app)`, which serves an app on an
ephemeral port of 127.0.0.1 in a thread and stops it."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ner_fast.serve.server import bind, make_server, run
from ner_fast.serve.settings import Limits

# A provenance record as bundled packages have (the test package gets it; /v1/model passes it on).
PROVENANCE = {"command": "tests/serve/conftest.py", "validation": {"f1": 0.4321, "per_type": {"geo": {"f1": 0.5}}}}
# Small limits, so the tests reach each of them with small requests.
LIMITS = Limits(max_body_bytes=8192, max_texts=8, max_text_chars=300)



@contextmanager
def running(app: object) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at a free port in a thread; yields its base URL; stops it (graceful) at the end."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app)
    thread = threading.Thread(target=run, args=(server, sock), daemon=True, name="test-server")
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the test server did not stop"
