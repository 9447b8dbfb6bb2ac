"""Records of received webhook deliveries and token requests."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hqsync.errors import SandboxError

logger = logging.getLogger(__name__)

# Authentication outcomes of a webhook request.
AUTH_OK = "ok"
AUTH_NOT_CHECKED = "not_checked"  # a failure was injected before the check


@dataclass(frozen=True)
class ReceivedDelivery:
    """One webhook request and the status returned; no credential is kept."""

    sequence: int  # arrival order, from 1; set by Recorder
    received_at: str  # ISO 8601, UTC
    service: str  # power-automate, salesforce, or unknown for an unrouted path
    path: str  # without the query string, which may carry a signature
    delivery_id: str | None
    auth: str
    status: int
    body: Any  # decoded JSON, else the text, else None
    problems: list[str] = field(default_factory=list)
    duplicate: bool = False  # an earlier request with this id got a 2xx
    injected_failure: bool = False  # failed by --fail-rate, not by the checks

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class TokenRequest:
    """One OAuth2 token request and its outcome; no credential is kept."""

    sequence: int
    received_at: str
    grant_type: str | None
    outcome: str  # "issued" or the OAuth2 error code returned
    status: int

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


class Recorder:
    """Keep received requests in memory and append deliveries to a JSON Lines file.

    The server's event loop writes and other threads read, so a lock guards
    both lists.
    """

    def __init__(self, record_path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[ReceivedDelivery] = []
        self._token_requests: list[TokenRequest] = []
        self._confirmed_ids: set[str] = set()
        self._record_path = record_path
        if record_path is not None:
            _check_writable(record_path)

    def add_delivery(self, delivery: ReceivedDelivery) -> ReceivedDelivery:
        """Number, store and append a delivery; mark it if its id was confirmed."""
        with self._lock:
            delivery = replace(
                delivery,
                sequence=len(self._deliveries) + 1,
                duplicate=delivery.delivery_id in self._confirmed_ids,
            )
            self._deliveries.append(delivery)
            if delivery.delivery_id is not None and 200 <= delivery.status < 300:
                self._confirmed_ids.add(delivery.delivery_id)
            if self._record_path is not None:
                self._append(delivery)
        return delivery

    def add_token_request(self, request: TokenRequest) -> TokenRequest:
        """Number and store a token request."""
        with self._lock:
            request = replace(request, sequence=len(self._token_requests) + 1)
            self._token_requests.append(request)
        return request

    def deliveries(self) -> list[ReceivedDelivery]:
        """Return the deliveries received so far, in arrival order."""
        with self._lock:
            return list(self._deliveries)

    def token_requests(self) -> list[TokenRequest]:
        """Return the token requests received so far, in arrival order."""
        with self._lock:
            return list(self._token_requests)

    def clear(self) -> None:
        """Forget what was received; the record file is left as it is."""
        with self._lock:
            self._deliveries.clear()
            self._token_requests.clear()
            self._confirmed_ids.clear()

    def _append(self, delivery: ReceivedDelivery) -> None:
        # A small blocking write on the event loop: one line per delivery, so
        # the file is complete whenever the sandbox stops.
        assert self._record_path is not None
        line = json.dumps(delivery.to_dict(), sort_keys=True)
        try:
            with self._record_path.open("a", encoding="utf-8") as stream:
                stream.write(line + "\n")
        except OSError as exc:
            logger.error(
                "cannot append delivery %s to %s: %s",
                delivery.sequence,
                self._record_path,
                exc,
            )


def _check_writable(path: Path) -> None:
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise SandboxError(
            f"cannot open record file {path}: {exc.strerror or exc}"
        ) from exc
