"""The server's settings, checked before the model loads: a taken port or a missing key file fails at once.

The listening socket is bound here and handed to uvicorn, so that the port checked is the port
served, with no window in which another process could take it.
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field

from tunesmith.errors import UserError

API_KEY_ENV = "TUNESMITH_API_KEY"
API_KEY_HEADER = "X-API-Key"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    # Micro-batching: a model call takes up to max_batch texts, waiting at most max_wait_ms for them.
    batching: bool = True
    max_batch: int = 32
    max_wait_ms: float = 5.0
    # Texts waiting for the model before a request is answered 503.
    max_queue: int = 1024
    # Per request: texts, and characters per text.
    max_texts: int = 64
    max_chars: int = 10_000
    api_key: str | None = None
    threads: int | None = None
    # Seconds in-flight requests get to finish after SIGTERM.
    graceful_s: float = 30.0
    sock: socket.socket | None = field(default=None, repr=False)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body worth reading: every text at its limit, 4 bytes a character in JSON."""
        return self.max_texts * (self.max_chars * 4 + 64) * 2 + 4096


def settings_from_args(args: argparse.Namespace) -> Settings:
    for flag in ("max_batch", "max_queue", "max_texts", "max_chars"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: give a number of at least 1.")
    if args.max_wait_ms < 0:
        raise UserError(f"--max-wait-ms {args.max_wait_ms}: give 0 or more milliseconds.")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: give at least 1.")
    settings = Settings(
        host=args.host,
        port=args.port,
        batching=not args.no_batching,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        api_key=read_api_key(args.api_key_file),
        threads=args.threads,
    )
    settings.sock = bind(settings.host, settings.port)
    return settings


def read_api_key(path: str | None) -> str | None:
    """The key from --api-key-file (its first line), else from $TUNESMITH_API_KEY, else None: no key needed."""
    if path is None:
        return os.environ.get(API_KEY_ENV) or None
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.readline().strip()
    except FileNotFoundError:
        raise UserError(
            f"--api-key-file {path} does not exist. Write the key on its first line, or leave it out."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--api-key-file {path} cannot be read ({exc}). Check the path and its permissions.") from None
    if not key:
        raise UserError(f"--api-key-file {path} is empty. Write the key on its first line.")
    return key


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or a UserError naming what holds it back."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: give a port from 1 to 65535.")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: not an address of this machine ({exc.strerror}).") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"Cannot listen on {host}:{port} ({exc.strerror}): another program is using the port, or the address "
            "is not this machine's. Choose another --port (or stop the other server)."
        ) from None
    return sock
