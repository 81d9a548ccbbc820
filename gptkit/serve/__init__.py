"""`gptkit serve`: a trained run behind an OpenAI-compatible HTTP API, with a browser playground.

Layout: `settings` (limits), `requests` (checking a completions body), `worker` (the thread that owns the
model), `app` (routes and streaming), `playground.html` (the page at /). Entry point: `serve(run, settings)`.
"""

import signal
import socket
import sys
import threading
import time

from gptkit.serve.settings import ServeSettings, is_loopback

__all__ = ["ServeSettings", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 = any free one), so the real port is known before serving starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(run, settings: ServeSettings, log_level: str = "info") -> None:
    """Serve `run` until interrupted; prints the address first (one line, flushed).

    The HTTP server runs on a second thread and the model on this (main) one: see `gptkit.serve.worker`.
    """
    import uvicorn

    from gptkit.serve.app import build_app

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("gptkit.serve.serve runs the model on the main thread; call it from there")
    if not is_loopback(settings.host) and not settings.api_key and not settings.insecure_no_api_key:
        from gptkit.errors import ArgumentError

        raise ArgumentError(
            "settings.host",
            "listening beyond this machine without an API key lets anyone who can reach the port use it; set one "
            "(api_key; --api-key KEY or GPTKIT_API_KEY), or insecure_no_api_key=True (--insecure-no-api-key) if you "
            "mean it",
            settings.host,
            flag="--host",
        )
    app = build_app(run, settings)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as error:
        from gptkit.errors import GptkitError

        raise GptkitError(
            f"{settings.host} port {settings.port}: cannot listen there ({error.strerror}); "
            "pick another port, or port 0 (--port 0) for any free one"
        ) from None
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if not is_loopback(settings.host) and not settings.api_key:
        print(
            f"warning: serving on {settings.host} without --api-key: anyone who can reach it can use it",
            file=sys.stderr,
        )
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5))
    worker = app.state.api.worker

    def serve_http() -> None:
        try:
            server.run(sockets=[sock])
        finally:  # however the HTTP side ends (even failing to start), the model side ends with it
            worker.stop()

    http = threading.Thread(target=serve_http, name="gptkit-http", daemon=True)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # SIGTERM: a clean exit, status 0
    try:
        http.start()
        began = time.monotonic()
        while not server.started and http.is_alive() and time.monotonic() - began < 60:
            time.sleep(0.01)
        if not server.started:
            from gptkit.errors import GptkitError

            raise GptkitError(f"the HTTP server did not start on {url}; rerun with --debug for details")
        print(f"serving {run.run_dir} as model {app.state.api.model_id!r} on {url}  (playground: {url}/)", flush=True)
        worker.run_forever()  # until Ctrl-C, SIGTERM, or the HTTP server stops
    finally:
        worker.close()  # the running and the queued requests get a 503 now, not a dropped connection later
        server.should_exit = True
        http.join(timeout=10)
        sock.close()
        signal.signal(signal.SIGTERM, previous)
