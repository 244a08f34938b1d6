"""A sandbox carrier: an HTTP process that answers like a carrier's tracking API.

    python -m apps.orders.sandbox_carrier --port 8021 [--data apps/orders/demo_data/orders.json]

``make run`` and the tests start it as a process of its own; it needs nothing but
the standard library (no Django). Endpoints:

- ``GET /v1/tracking/{tracking_number}[?carrier=code]`` with ``X-API-Key`` → 200 JSON
  (status and scan events, newest first); 401 for a missing or wrong key, 400 for
  something that is not a tracking number, 404 for an unknown one (or another carrier's).
- ``POST /_sandbox/reset`` (same key) → resets the "fail first N calls" counters.
- ``GET /healthz`` → ``{"status": "ok"}`` (no key), for readiness waits.

Each tracking number in the data file's ``tracking`` section is scripted: scan
events are given in ``hours_ago`` and rendered relative to now, so a demo parcel
stays "3 days without a scan" forever; ``behaviour`` adds ``delay_seconds`` (slow
answers), ``error_status`` (always 500/503, or only for the first ``fail_first``
calls) and ``garbage`` (200 with a body that is not JSON).

The key comes from ``--api-key``, else ``CARRIER_SANDBOX_API_KEY``, else ``sandbox-key``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATA = Path(__file__).resolve().parent / "demo_data" / "orders.json"
DEFAULT_API_KEY = "sandbox-key"
TRACKING_PREFIX = "/v1/tracking/"
TRACKING_NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$")


def _offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text.lstrip("+-").split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def tracking_body(number: str, script: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The API's answer for one scripted parcel, its scan times relative to ``now``."""
    zone = _offset(script.get("utc_offset", "+00:00"))
    events = sorted(script.get("events", []), key=lambda event: event["hours_ago"])
    return {
        "tracking_number": number,
        "carrier": script["carrier"],
        "status": script["status"],
        "events": [
            {
                "time": (now - timedelta(hours=event["hours_ago"]))
                .astimezone(zone)
                .isoformat(timespec="seconds"),
                "place": event["place"],
                "status": event["status"],
                "description": event["description"],
            }
            for event in events
        ],
    }


class SandboxCarrier(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, scripts: dict[str, dict[str, Any]], api_key: str) -> None:
        super().__init__(address, SandboxHandler)
        self.scripts = scripts
        self.api_key = api_key
        self.calls: Counter[str] = Counter()
        self.calls_lock = threading.Lock()

    def count_call(self, number: str) -> int:
        """How many calls for this number came before this one."""
        with self.calls_lock:
            previous = self.calls[number]
            self.calls[number] += 1
            return previous


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxCarrier
    server_version = "SandboxCarrier/1.0"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._json(200, {"status": "ok"})
            return
        if not url.path.startswith(TRACKING_PREFIX):
            self._error(404, "not_found", "no such endpoint")
            return
        if not self._authorised():
            return
        number = unquote(url.path[len(TRACKING_PREFIX) :])
        if not TRACKING_NUMBER_RE.fullmatch(number):
            self._error(400, "invalid_tracking_number", "not a tracking number")
            return
        script = self.server.scripts.get(number)
        carrier = parse_qs(url.query).get("carrier", [""])[0]
        if script is None or (carrier and carrier != script["carrier"]):
            self._error(404, "not_found", "unknown tracking number")
            return
        self._answer(number, script)

    def do_POST(self) -> None:
        # Read (and ignore) any body, so a kept-alive connection stays in step.
        self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 65536))
        if urlsplit(self.path).path != "/_sandbox/reset":
            self._error(404, "not_found", "no such endpoint")
            return
        if not self._authorised():
            return
        with self.server.calls_lock:
            self.server.calls.clear()
        self._json(200, {"status": "reset"})

    def _answer(self, number: str, script: dict[str, Any]) -> None:
        behaviour = script.get("behaviour", {})
        previous_calls = self.server.count_call(number)
        if behaviour.get("delay_seconds"):
            time.sleep(float(behaviour["delay_seconds"]))
        error_status = behaviour.get("error_status")
        failing = error_status and previous_calls < behaviour.get("fail_first", sys.maxsize)
        if failing:
            self._error(int(error_status), "carrier_error", "scripted failure")
        elif behaviour.get("garbage"):
            self._send(200, b"<html><body>502 upstream gateway</body></html>", "text/html")
        else:
            self._json(200, tracking_body(number, script, datetime.now(UTC)))

    def _authorised(self) -> bool:
        given = self.headers.get("X-API-Key", "")
        if hmac.compare_digest(given.encode(), self.server.api_key.encode()):
            return True
        self._error(401, "unauthorized", "missing or invalid API key")
        return False

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": {"code": code, "message": message}})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout ran out while we were slow on purpose).
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base class's name
        # One line per request; never the headers (the API key travels in one).
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def load_scripts(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["tracking"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m apps.orders.sandbox_carrier", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSON file with a 'tracking' section")
    parser.add_argument("--api-key", default=os.environ.get("CARRIER_SANDBOX_API_KEY") or DEFAULT_API_KEY)
    args = parser.parse_args(argv)

    server = SandboxCarrier((args.host, args.port), scripts=load_scripts(args.data), api_key=args.api_key)

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"sandbox carrier listening on http://{args.host}:{args.port} "
        f"({len(server.scripts)} tracking numbers from {args.data})",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
