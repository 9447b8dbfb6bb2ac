"""The sandbox's HTTP endpoints: Power Automate, Salesforce, and its own /_sandbox.

Responses follow what the real services send: a Power Automate trigger returns
202 with an empty body; Salesforce returns 400 ``invalid_client`` for bad
client credentials, a token response without ``expires_in``, and 401
``INVALID_SESSION_ID`` for an unknown token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import BasicAuth, web

from hqsync.delivery.payload import validate_v1_body
from hqsync.sandbox.config import SandboxConfig
from hqsync.sandbox.recorder import (
    AUTH_NOT_CHECKED,
    AUTH_OK,
    ReceivedDelivery,
    Recorder,
    TokenRequest,
)

logger = logging.getLogger(__name__)

POWER_AUTOMATE = "power-automate"
SALESFORCE = "salesforce"
UNKNOWN_SERVICE = "unknown"
HIGHQ_AUTH_KEY_HEADER = "HighQ-Auth-Key"
MAX_BODY_BYTES = 1024 * 1024

# Trigger URL shapes: Power Automate's, the older Logic Apps one, and the
# Power Platform "direct" one; the sandbox treats them alike.
POWER_AUTOMATE_ROUTES = (
    "/powerautomate/workflows/{workflow_id}/triggers/{trigger}/paths/invoke",
    "/powerautomate/automations/direct/workflows/{workflow_id}/triggers/{trigger}"
    "/paths/invoke",
    "/workflows/{workflow_id}/triggers/{trigger}/paths/invoke",
)
SALESFORCE_TOKEN_ROUTE = "/services/oauth2/token"
SALESFORCE_APEX_ROUTE = "/services/apexrest/{apex_path:.+}"

# (authentication outcome, the error response or None when authenticated)
_AuthResult = tuple[str, web.Response | None]
_Authenticator = Callable[[web.Request], _AuthResult]


def build_app(
    config: SandboxConfig, recorder: Recorder
) -> tuple[web.Application, SandboxEndpoints]:
    """Make the endpoints and the aiohttp application that routes to them."""
    endpoints = SandboxEndpoints(config, recorder)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    for route in POWER_AUTOMATE_ROUTES:
        app.router.add_post(route, endpoints.power_automate_trigger)
    app.router.add_post(SALESFORCE_TOKEN_ROUTE, endpoints.salesforce_token)
    app.router.add_post(SALESFORCE_APEX_ROUTE, endpoints.salesforce_apex)
    app.router.add_get("/_sandbox/health", endpoints.health)
    app.router.add_get("/_sandbox/deliveries", endpoints.list_deliveries)
    app.router.add_delete("/_sandbox/deliveries", endpoints.clear_deliveries)
    app.router.add_get("/_sandbox/token-requests", endpoints.list_token_requests)
    app.router.add_post("/_sandbox/revoke-tokens", endpoints.revoke_tokens_endpoint)
    # Last, so it only takes POSTs no other route matched: a misconfigured URL
    # shows up in the deliveries with status 404.
    app.router.add_post("/{tail:.*}", endpoints.unrouted)
    return app, endpoints


class SandboxEndpoints:
    """Handle every sandbox request; one instance per running server."""

    def __init__(self, config: SandboxConfig, recorder: Recorder) -> None:
        self._config = config
        self._recorder = recorder
        self._random = random.Random(config.seed)
        # Tokens are issued on the event loop and revoked from any thread.
        self._tokens_lock = threading.Lock()
        self._tokens: set[str] = set()

    def revoke_tokens(self) -> int:
        """Forget every issued access token, so its next use gets a 401."""
        with self._tokens_lock:
            count = len(self._tokens)
            self._tokens.clear()
        logger.info("revoked %s access tokens", count)
        return count

    # -- services ----------------------------------------------------------

    async def power_automate_trigger(self, request: web.Request) -> web.Response:
        """Check signature and HighQ-Auth-Key, then the V1 body; return 202."""
        return await self._webhook(
            request, POWER_AUTOMATE, self._authenticate_power_automate, _accepted
        )

    async def salesforce_apex(self, request: web.Request) -> web.Response:
        """Check the bearer token, then the V1 body; return 201."""
        return await self._webhook(
            request, SALESFORCE, self._authenticate_salesforce, _created
        )

    async def salesforce_token(self, request: web.Request) -> web.Response:
        """Issue an access token for the client-credentials grant."""
        received_at = _now()
        form = await request.post() if request.can_read_body else {}
        grant_type = form.get("grant_type")
        grant = grant_type if isinstance(grant_type, str) else None
        error = self._token_error(request, form, grant)
        if error is None:
            response = self._issue_token(request, form)
            outcome = "issued"
        else:
            outcome, description = error
            response = web.json_response(
                {"error": outcome, "error_description": description}, status=400
            )

        await self._delay()
        record = self._recorder.add_token_request(
            TokenRequest(0, received_at, grant, outcome, response.status)
        )
        level = logging.INFO if error is None else logging.WARNING
        logger.log(level, "token request %s: %s", record.sequence, outcome)
        return response

    async def unrouted(self, request: web.Request) -> web.Response:
        """Record a POST to a path no service serves, and return 404."""
        received_at = _now()
        body, _ = await _read_body(request)
        response = web.json_response(
            {"error": "not_found", "message": "no sandbox endpoint at this path"},
            status=404,
        )
        self._record(
            request, received_at, UNKNOWN_SERVICE, AUTH_NOT_CHECKED, response, body, []
        )
        return response

    # -- the sandbox's own endpoints ------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """Return 200 with counts of what was received."""
        return web.json_response(
            {
                "status": "ok",
                "deliveries": len(self._recorder.deliveries()),
                "token_requests": len(self._recorder.token_requests()),
            }
        )

    async def list_deliveries(self, request: web.Request) -> web.Response:
        """Return every delivery received, in arrival order."""
        deliveries = [item.to_dict() for item in self._recorder.deliveries()]
        return web.json_response(deliveries)

    async def clear_deliveries(self, request: web.Request) -> web.Response:
        """Forget deliveries and token requests received so far."""
        self._recorder.clear()
        return web.Response(status=204)

    async def list_token_requests(self, request: web.Request) -> web.Response:
        """Return every token request received, in arrival order."""
        requests = [item.to_dict() for item in self._recorder.token_requests()]
        return web.json_response(requests)

    async def revoke_tokens_endpoint(self, request: web.Request) -> web.Response:
        """Revoke every issued token, to rehearse a token refresh."""
        return web.json_response({"revoked": self.revoke_tokens()})

    # -- webhook steps ---------------------------------------------------------

    async def _webhook(
        self,
        request: web.Request,
        service: str,
        authenticate: _Authenticator,
        success: Callable[[], web.Response],
    ) -> web.Response:
        received_at = _now()
        body, body_error = await _read_body(request)

        # An injected failure stands for an outage, so it comes before any check.
        injected = self._random.random() < self._config.fail_rate
        problems: list[str] = []
        if injected:
            auth, response = AUTH_NOT_CHECKED, self._injected_failure()
        else:
            auth, auth_error = authenticate(request)
            if auth_error is None:
                response, problems = _check_body(body, body_error, success)
            else:
                response = auth_error

        await self._delay()
        self._record(
            request, received_at, service, auth, response, body, problems, injected
        )
        return response

    def _authenticate_power_automate(self, request: web.Request) -> _AuthResult:
        if "api-version" not in request.query:
            return AUTH_NOT_CHECKED, _power_automate_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required.",
            )
        signature = request.query.get("sig")
        if not signature:
            return "missing_signature", _power_automate_error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be signed with the sig query parameter.",
            )
        if not _same_secret(signature, self._config.pa_sig):
            return "invalid_signature", _power_automate_error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The sig query parameter is not valid.",
            )

        key = request.headers.get(HIGHQ_AUTH_KEY_HEADER)
        if not key:
            return "missing_key", _power_automate_error(
                401, "Unauthorized", f"The {HIGHQ_AUTH_KEY_HEADER} header is missing."
            )
        if not _same_secret(key, self._config.pa_key):
            return "invalid_key", _power_automate_error(
                401, "Unauthorized", f"The {HIGHQ_AUTH_KEY_HEADER} header is not valid."
            )
        return AUTH_OK, None

    def _authenticate_salesforce(self, request: web.Request) -> _AuthResult:
        # Salesforce takes the token with the Bearer or the OAuth scheme.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return "missing_token", _invalid_session()
        with self._tokens_lock:
            known = token in self._tokens
        if not known:
            return "invalid_token", _invalid_session()
        return AUTH_OK, None

    def _injected_failure(self) -> web.Response:
        headers = {}
        if self._config.retry_after is not None:
            headers["Retry-After"] = str(self._config.retry_after)
        return web.json_response(
            {
                "error": "injected_failure",
                "message": "the sandbox failed this request on purpose (--fail-rate)",
            },
            status=self._config.fail_status,
            headers=headers,
        )

    async def _delay(self) -> None:
        if self._config.slow_seconds > 0:
            await asyncio.sleep(self._config.slow_seconds)

    def _record(
        self,
        request: web.Request,
        received_at: str,
        service: str,
        auth: str,
        response: web.Response,
        body: Any,
        problems: list[str],
        injected: bool = False,
    ) -> None:
        delivery_id = request.headers.get(self._config.delivery_id_header)
        delivery = self._recorder.add_delivery(
            ReceivedDelivery(
                sequence=0,
                received_at=received_at,
                service=service,
                path=request.path,
                delivery_id=delivery_id,
                auth=auth,
                status=response.status,
                body=body,
                problems=problems,
                injected_failure=injected,
            )
        )
        # A rejected delivery is a warning, so a wrong key or body shows at the
        # default log level.
        level = logging.INFO if 200 <= response.status < 300 else logging.WARNING
        logger.log(
            level,
            "delivery %s to %s %s: responded %s (auth %s, delivery id %s%s)%s",
            delivery.sequence,
            service,
            request.path,
            response.status,
            auth,
            delivery_id,
            ", duplicate" if delivery.duplicate else "",
            "".join(f"; {problem}" for problem in problems),
        )

    # -- token steps -------------------------------------------------------------

    def _token_error(
        self, request: web.Request, form: Any, grant_type: str | None
    ) -> tuple[str, str] | None:
        if grant_type != "client_credentials":
            return "unsupported_grant_type", "grant type not supported"
        try:
            basic = _basic_credentials(request)
        except ValueError:
            return "invalid_client", "invalid client credentials"
        in_form = "client_id" in form or "client_secret" in form
        if basic is not None and in_form:
            return "invalid_request", "use one client authentication method"
        client_id, client_secret = basic or (
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
        )
        valid_id = _same_secret(client_id, self._config.sf_client_id)
        valid_secret = _same_secret(client_secret, self._config.sf_client_secret)
        if not (valid_id and valid_secret):
            return "invalid_client", "invalid client credentials"
        return None

    def _issue_token(self, request: web.Request, form: Any) -> web.Response:
        token = "00DSANDBOX!" + secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens.add(token)
        instance_url = str(request.url.origin())
        identity = f"{instance_url}/id/00DSANDBOX0000001/005SANDBOX0000001"
        issued_at = str(int(time.time() * 1000))

        # Salesforce signs id + issued_at with the client secret (HMAC-SHA256),
        # so a client can check the response came from its connected app.
        digest = hmac.new(
            self._config.sf_client_secret.encode(),
            (identity + issued_at).encode(),
            hashlib.sha256,
        ).digest()
        scope = form.get("scope")
        # No expires_in: Salesforce sends none, and a client must keep the
        # token until a request gets a 401.
        return web.json_response(
            {
                "access_token": token,
                "signature": base64.b64encode(digest).decode(),
                "scope": scope if isinstance(scope, str) and scope else "api",
                "instance_url": instance_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )


async def _read_body(request: web.Request) -> tuple[Any, str | None]:
    """Return the decoded body and what kept it from being JSON, if anything."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, f"body is larger than {MAX_BODY_BYTES} bytes"
    text = raw.decode("utf-8", errors="replace")
    if request.content_type != "application/json":
        return text or None, (
            f"Content-Type must be application/json, got {request.content_type!r}"
        )
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return text or None, f"body is not valid JSON: {exc}"


def _check_body(
    body: Any, body_error: str | None, success: Callable[[], web.Response]
) -> tuple[web.Response, list[str]]:
    problems = [body_error] if body_error is not None else validate_v1_body(body)
    if not problems:
        return success(), []
    response = web.json_response(
        {"error": "invalid_v1_body", "problems": problems}, status=400
    )
    return response, problems


def _accepted() -> web.Response:
    return web.Response(status=202)


def _created() -> web.Response:
    return web.json_response({"success": True}, status=201)


def _power_automate_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status
    )


def _invalid_session() -> web.Response:
    return web.json_response(
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        status=401,
        headers={"WWW-Authenticate": "Token"},
    )


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    auth = BasicAuth.decode(header)  # ValueError for a malformed header
    # RFC 6749 section 2.3.1: clients form-encode id and secret before base64.
    return unquote_plus(auth.login), unquote_plus(auth.password)


def _same_secret(received: str, expected: str) -> bool:
    return hmac.compare_digest(received.encode(), expected.encode())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
