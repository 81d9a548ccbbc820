"""`gptkit serve`: a run behind an OpenAI-compatible HTTP API and a browser playground (see gptkit.serve)."""

import os

from gptkit.cli.common import DEVICE, QUANTIZE, RUN, WEIGHTS
from gptkit.errors import GptkitError
from gptkit.serve.settings import ServeSettings


def cmd_serve(args) -> None:
    from gptkit.run import load_run
    from gptkit.serve import serve

    limits = {"--max-tokens": args.max_tokens, "--max-n": args.max_n, "--max-queue": args.max_queue}
    for flag, value in limits.items():
        if value < 1:
            raise GptkitError(f"{flag} {value}: must be >= 1")
    if args.max_prompt_tokens < 0 or args.timeout <= 0 or args.body_timeout <= 0 or not 0 <= args.port < 65536:
        raise GptkitError("need --max-prompt-tokens >= 0, --timeout and --body-timeout > 0, and --port in 0..65535")
    run = load_run(args.run, weights=args.weights, device=args.device or "auto", quantize=args.quantize)
    run.check_generates()
    if run.tokenizer is None:
        raise GptkitError(f"{args.run} has no tokenizer (its weights were imported alone); import it with --tokenizer")
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("GPTKIT_API_KEY", ""),
        max_tokens=args.max_tokens,
        max_prompt_tokens=args.max_prompt_tokens,
        max_n=args.max_n,
        max_queue=args.max_queue,
        timeout_s=args.timeout,
        model_name=args.name,
        allow_hosts=tuple(args.allow_host),
        body_timeout_s=args.body_timeout,
        insecure_no_api_key=args.insecure_no_api_key,
    )
    serve(run, settings, log_level="warning" if args.quiet else "info")


def add_serve_command(sub) -> None:
    defaults = ServeSettings()
    p = sub.add_parser(
        "serve",
        parents=[RUN, WEIGHTS, DEVICE, QUANTIZE],
        help="serve a run over HTTP: OpenAI-style /v1/completions (and /v1/chat/completions) and a playground at /",
    )
    p.add_argument("--host", default=defaults.host, help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=defaults.port, help="port (0 = any free one; the address is printed)")
    p.add_argument("--api-key", default="", help="require 'Authorization: Bearer KEY' (or set GPTKIT_API_KEY)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; IP addresses and localhost always are)",
    )
    p.add_argument(
        "--insecure-no-api-key",
        action="store_true",
        help="listen beyond loopback (e.g. --host 0.0.0.0) without --api-key: anyone who can reach the port can use it",
    )
    p.add_argument(
        "--body-timeout", type=float, default=defaults.body_timeout_s, help="seconds a request body may take to arrive"
    )
    p.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="cap on a request's max_tokens")
    p.add_argument("--max-prompt-tokens", type=int, default=0, help="cap on a prompt's tokens (0 = block_size)")
    p.add_argument("--max-n", type=int, default=defaults.max_n, help="cap on completions per prompt (n)")
    p.add_argument("--max-queue", type=int, default=defaults.max_queue, help="requests that may wait; more get 503")
    p.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds a request may take in all")
    p.add_argument("--name", default="", help="model id in the API (default: the run directory's name)")
    p.add_argument("--quiet", action="store_true", help="no log line per request")
    p.set_defaults(func=cmd_serve)
