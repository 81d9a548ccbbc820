"""What `gptkit serve` allows: address, API key and the limits every request is checked against."""

import ipaddress
from dataclasses import dataclass


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"  # loopback unless the user asks for more
    port: int = 8000  # 0 = any free port (printed at start)
    api_key: str = ""  # when set, /v1/* needs "Authorization: Bearer <key>"
    max_tokens: int = 512  # cap on a request's max_tokens
    max_prompt_tokens: int = 0  # cap on a prompt's length in tokens; 0 = the model's block_size
    max_n: int = 8  # completions per request (number of prompts x n)
    max_body_bytes: int = 1_000_000  # larger request bodies get 413 before they are parsed
    max_queue: int = 64  # requests waiting for the model; more get 503
    timeout_s: float = 60.0  # a request's limit from arrival to its last token (queue time included)
    model_name: str = ""  # the id in /v1/models; default: the run directory's name
    allow_hosts: tuple[str, ...] = ()  # Host names accepted besides IP addresses, localhost and `host`
    body_timeout_s: float = 10.0  # a request body must arrive within this (a slow trickle is refused with 408)
    insecure_no_api_key: bool = False  # listen beyond loopback without an API key (refused unless set)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
