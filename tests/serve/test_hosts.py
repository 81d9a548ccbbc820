"""Who may reach the server: Host and Origin on every bind address (DNS rebinding), the API key beyond loopback,
slow bodies, and strict JSON types. Real server processes, real sockets."""

import http.client
import json
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from serving import API_KEY, Server

from gptkit.serve.hosts import host_name


def call(url: str, path: str = "/v1/models", *, host: str | None = None, method: str = "GET", body=None, **headers):
    """(status, JSON body) of one request to the server at `url`, with the Host header of our choice."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Host": host or parts.netloc, "Authorization": f"Bearer {API_KEY}", **headers}
    payload = None if body is None else json.dumps(body)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read() or b"null")
    connection.close()
    return status, data


@pytest.fixture(scope="module")
def ipv6_server(trained_run):
    running = Server(trained_run, "--host", "::1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def public_server(trained_run):
    running = Server(
        trained_run, "--host", "0.0.0.0", "--api-key", API_KEY, "--allow-host", "gpt.example.lan", "--body-timeout", "1"
    )
    yield running
    running.stop()


@pytest.mark.parametrize("which", ["ipv6_server", "public_server", "server"])
def test_a_foreign_host_is_refused_on_every_bind_address(which, request):
    server = request.getfixturevalue(which)
    for path, method in (("/v1/models", "GET"), ("/", "GET"), ("/health", "GET"), ("/v1/completions", "POST")):
        status, body = call(server.url, path, host="evil.com", method=method, body={"prompt": "a"})
        assert status == 400, (path, body)
        assert body["error"]["code"] == "host_not_allowed" and "evil.com" in body["error"]["message"]
    status, body = call(server.url, host="evil.com:8000", Origin="http://evil.com:8000")
    assert status == 400
    assert call(server.url)[0] == 200  # its own address still works
    assert call(server.url, host=f"localhost:{urlsplit(server.url).port}")[0] == 200


def test_ip_addresses_and_allowed_names_pass_and_other_pages_are_refused(public_server):
    port = urlsplit(public_server.url).port
    for host in (f"127.0.0.1:{port}", f"gpt.example.lan:{port}", "GPT.example.lan.", f"[::1]:{port}"):
        assert call(public_server.url, host=host)[0] == 200, host
    status, body = call(public_server.url, host=f"127.0.0.1:{port}", Origin="http://evil.com")
    assert status == 403 and "evil.com" in body["error"]["message"]
    assert call(public_server.url, host=f"127.0.0.1:{port}", Origin=f"http://127.0.0.1:{port}")[0] == 200
    assert call(public_server.url, host=f"127.0.0.1:{port}", Origin="null")[0] == 403
    assert call(public_server.url, Authorization="Bearer wrong")[0] == 401  # the key is still needed


@pytest.mark.slow
def test_listening_beyond_loopback_without_a_key_is_refused_unless_meant(trained_run):
    command = [sys.executable, "-m", "gptkit", "serve", str(trained_run), "--host", "0.0.0.0", "--port", "0"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "--api-key" in refused.stderr and "--insecure-no-api-key" in refused.stderr
    meant = Server(trained_run, "--host", "0.0.0.0", "--insecure-no-api-key")
    try:
        assert call(meant.url, Authorization="")[0] == 200
        assert call(meant.url, host="evil.com")[0] == 400
        assert "without --api-key" in meant.stderr()
    finally:
        meant.stop()


def test_a_body_that_never_finishes_arriving_is_cut_off(public_server):
    parts = urlsplit(public_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (
            f"POST /v1/completions HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        began = time.monotonic()
        sock.sendall(head.encode() + b'{"prompt": ')  # 11 of the 100 bytes promised, then nothing
        answer = sock.recv(65536)
        while answer and not answer.endswith(b"}}"):  # the JSON body may come in a second packet
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"did not arrive within 1 s" in answer
        assert time.monotonic() - began < 10
    assert public_server.alive()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompt": "a", "max_tokens": "5"}, "max_tokens"),
        ({"prompt": "a", "max_tokens": True}, "max_tokens"),
        ({"prompt": "a", "temperature": "0.5"}, "temperature"),
        ({"prompt": "a", "n": 1.0}, "n"),
        ({"prompt": "a", "stream": "yes"}, "stream"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_numbers_and_booleans_must_have_their_json_types(server, body, field):
    status, answer = call(server.url, "/v1/completions", method="POST", body=body)
    assert status == 400 and answer["error"]["param"] == field, answer
    assert call(server.url, "/v1/completions", method="POST", body={"prompt": "a", "max_tokens": 2})[0] == 200


def test_host_names_are_compared_without_port_case_or_final_dot():
    assert host_name("[::1]:8000") == "::1"
    assert host_name("Example.COM.:80") == "example.com"
    assert host_name("localhost") == "localhost"


def test_beyond_loopback_the_machines_own_name_is_allowed():
    from gptkit.serve.hosts import allowed_names

    assert host_name(socket.gethostname()) in allowed_names("0.0.0.0")
    assert host_name(socket.gethostname()) not in allowed_names("127.0.0.1") or socket.gethostname() == "localhost"
