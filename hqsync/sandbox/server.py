"""Run the sandbox: in a background thread for tests, or in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from urllib.parse import quote, urlencode

from aiohttp import web

from hqsync.errors import SandboxError
from hqsync.sandbox.app import SandboxEndpoints, build_app
from hqsync.sandbox.config import SandboxConfig
from hqsync.sandbox.recorder import ReceivedDelivery, Recorder, TokenRequest

logger = logging.getLogger(__name__)

# Seconds that stopping waits for requests still in progress (--slow).
SHUTDOWN_TIMEOUT = 2.0
START_TIMEOUT = 30.0
POWER_AUTOMATE_API_VERSION = "2016-06-01"
DEFAULT_WORKFLOW_ID = "sandbox-flow"
DEFAULT_APEX_PATH = "highq/notify"


class SandboxUrls:
    """The sandbox's endpoint URLs for one base URL; only trigger_url has a secret."""

    def __init__(self, base_url: str, config: SandboxConfig) -> None:
        self.base_url = base_url
        self._config = config

    def trigger_url(
        self, workflow_id: str = DEFAULT_WORKFLOW_ID, *, with_signature: bool = True
    ) -> str:
        """Return a Power Automate trigger URL; with_signature adds the secret sig."""
        query = {
            "api-version": POWER_AUTOMATE_API_VERSION,
            "sp": "/triggers/manual/run",
            "sv": "1.0",
        }
        if with_signature:
            query["sig"] = self._config.pa_sig
        path = f"/powerautomate/workflows/{quote(workflow_id, safe='')}"
        return f"{self.base_url}{path}/triggers/manual/paths/invoke?{urlencode(query)}"

    @property
    def token_url(self) -> str:
        """Return the Salesforce-style OAuth2 token URL."""
        return f"{self.base_url}/services/oauth2/token"

    def apex_url(self, path: str = DEFAULT_APEX_PATH) -> str:
        """Return a Salesforce-style Apex REST URL."""
        return f"{self.base_url}/services/apexrest/{path.lstrip('/')}"

    @property
    def deliveries_url(self) -> str:
        """Return the URL that lists received deliveries."""
        return f"{self.base_url}/_sandbox/deliveries"


def base_url(host: str, port: int) -> str:
    """Return the http base URL of a host and port, bracketing an IPv6 host."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def open_site(
    config: SandboxConfig,
) -> tuple[web.AppRunner, SandboxEndpoints, Recorder, int]:
    """Start listening; return the runner, endpoints, recorder and bound port."""
    recorder = Recorder(config.record_path)
    app, endpoints = build_app(config, recorder)
    # No access log: aiohttp's logs the request line, whose query carries the
    # Power Automate signature.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SandboxError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}; "
            "choose another port with --bind"
        ) from exc
    port: int = runner.addresses[0][1]
    logger.info("sandbox listening on %s", base_url(config.host, port))
    return runner, endpoints, recorder, port


class SandboxServer:
    """A sandbox running on its own event loop in a background thread."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoints: SandboxEndpoints | None = None
        self._recorder: Recorder | None = None
        self._port: int | None = None
        self._startup_error: BaseException | None = None

    def start(self) -> SandboxServer:
        """Start listening and return once requests can be served."""
        if self._thread is not None:
            raise SandboxError("the sandbox is already running")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="hqsync-sandbox", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise SandboxError(f"the sandbox did not start within {START_TIMEOUT} s")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop listening and wait for the thread; deliveries() stays readable."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None
        self._loop = None
        self._port = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the port listened on (the chosen one when configured as 0)."""
        if self._port is None:
            raise SandboxError("the sandbox is not running")
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, such as http://127.0.0.1:8780."""
        return base_url(self.config.host, self.port)

    @property
    def urls(self) -> SandboxUrls:
        """Return the endpoint URLs of the running sandbox."""
        return SandboxUrls(self.url, self.config)

    def deliveries(self) -> list[ReceivedDelivery]:
        """Return the webhook requests received so far, in arrival order."""
        return self._running_recorder().deliveries()

    def token_requests(self) -> list[TokenRequest]:
        """Return the token requests received so far, in arrival order."""
        return self._running_recorder().token_requests()

    def clear(self) -> None:
        """Forget the requests received so far."""
        self._running_recorder().clear()

    def revoke_tokens(self) -> int:
        """Revoke every issued access token and return how many there were."""
        if self._endpoints is None:
            raise SandboxError("the sandbox is not running")
        return self._endpoints.revoke_tokens()

    def _running_recorder(self) -> Recorder:
        if self._recorder is None:
            raise SandboxError("the sandbox has not been started")
        return self._recorder

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            opened = loop.run_until_complete(open_site(self.config))
        except BaseException as exc:  # handed to start() in the caller's thread
            self._startup_error = exc
            loop.close()
            ready.set()
            return
        runner, self._endpoints, self._recorder, self._port = opened
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()
            logger.info("sandbox stopped")


async def serve_until_signal(
    config: SandboxConfig, on_started: Callable[[SandboxUrls], None]
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM arrives."""
    runner, _, _, port = await open_site(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        on_started(SandboxUrls(base_url(config.host, port), config))
        await stop.wait()
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signal_number)
        await runner.cleanup()
        logger.info("sandbox stopped")
