"""A real `gptkit serve` process on loopback (port 0, so tests never collide), and how tests talk to it."""

import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

API_KEY = "test-key-123"


class Server:
    def __init__(self, run_dir, *flags: str):
        # On the CPU whatever the machine has, so seeded answers equal the library's on the CPU.
        command = [sys.executable, "-m", "gptkit", "serve", str(run_dir), "--port", "0", "--quiet", "--device", "cpu"]
        self.errors = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill up and block the server
        self.process = subprocess.Popen([*command, *flags], stdout=subprocess.PIPE, stderr=self.errors, text=True)
        first = []  # "serving RUN as model 'NAME' on http://127.0.0.1:PORT  (...)"
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=120)
        line = first[0] if first else ""
        if " on http://" not in line:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the server did not start: {line!r} {self.stderr()}")
        self.url = line.split(" on ", 1)[1].split()[0]
        self.model = line.split("as model '", 1)[1].split("'", 1)[0]

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/health", timeout=10) as response:
            return json.loads(response.read())

    def alive(self) -> bool:
        return self.process.poll() is None and self.health()["status"] == "ok"

    def wait_idle(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health["pending"] == 0:
                return health
            time.sleep(0.05)
        raise AssertionError(f"the server is still busy after {timeout}s: {self.health()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process.stdout.close()
