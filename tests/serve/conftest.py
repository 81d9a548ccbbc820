"""The session's server: the tiny trained run behind `gptkit serve`, with an API key."""

import pytest
from serving import API_KEY, Server


@pytest.fixture(scope="session")
def server(trained_run):
    running = Server(trained_run, "--api-key", API_KEY, "--max-tokens", "20000")
    yield running
    running.stop()
    assert running.process.returncode == 0, running.stderr()  # a clean shutdown on SIGTERM
