"""Prometheus metrics of the runner; labels are names and classes, never URLs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RunnerMetrics:
    """The runner's counters, histogram and gauges in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "hqsync_delivery_attempts",
            "Delivery attempts by site, rule, service and outcome "
            "(success, retry, failed).",
            # Rule names are unique per site only, so the site is a label too.
            ["site", "rule", "service", "outcome"],
            registry=self.registry,
        )
        self.responses = Counter(
            "hqsync_delivery_responses",
            "Attempt results by service and status class (2xx ... 5xx, or error).",
            ["service", "status_class"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hqsync_delivery_attempt_duration_seconds",
            "Duration of one delivery attempt, auth included.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "hqsync_delivery_in_flight",
            "Deliveries this runner has leased and is sending.",
            registry=self.registry,
        )
        self.queue_due = Gauge(
            "hqsync_delivery_queue_due",
            "Pending deliveries whose next attempt is due.",
            registry=self.registry,
        )
        self.queue_oldest_due = Gauge(
            "hqsync_delivery_queue_oldest_due_seconds",
            "How long the oldest due delivery has waited past its due time.",
            registry=self.registry,
        )

    def observe(
        self,
        *,
        site: str,
        rule: str,
        service: str,
        outcome: str,
        http_status: int | None,
        seconds: float,
    ) -> None:
        """Count one attempt."""
        self.attempts.labels(
            site=site, rule=rule, service=service, outcome=outcome
        ).inc()
        status_class = f"{http_status // 100}xx" if http_status else "error"
        self.responses.labels(service=service, status_class=status_class).inc()
        self.latency.labels(service=service).observe(seconds)
