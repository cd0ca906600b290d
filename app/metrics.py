"""Prometheus metrics of one app, in its own registry (several apps in one process never collide).

Labels are bounded and never carry request content: a route is its template (`/v1/ask`, or `unmatched`
for paths no route knows), a stage its name, an error its code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from app.pipeline.types import Answer

UNMATCHED_ROUTE = "unmatched"
STAGES = ("rewrite", "retrieve", "fuse", "rerank", "gate", "generate", "verify", "total")
# Seconds: from a cached BM25 hit to a slow LLM answer.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _ServedPipeline(Protocol):
    index_version: str


class _Holder(Protocol):
    """What the metrics read from `app.serving.PipelineHolder` at scrape time."""

    @property
    def current(self) -> _ServedPipeline | None: ...


class _ServingCollector(Collector):
    """`clinqa_index_info{version}` and `clinqa_ready`, read from the holder when scraped, so a reload
    (or a failed start) shows without anything having to remember to update a gauge."""

    def __init__(self, holder: _Holder) -> None:
        self.holder = holder

    def collect(self) -> Iterable[Metric]:
        pipeline = self.holder.current
        info = GaugeMetricFamily("clinqa_index_info", "The index version being served (value 1).", labels=["version"])
        if pipeline is not None:
            info.add_metric([pipeline.index_version], 1)
        yield info
        yield GaugeMetricFamily(
            "clinqa_ready",
            "1 when an index is loaded and questions can be answered.",
            value=float(pipeline is not None),
        )


def route_of(scope: Mapping[str, object]) -> str:
    """The template of the route that handled the request (set by the router), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class Metrics:
    """The app's counters and histograms; `render()` is what `GET /metrics` serves."""

    def __init__(self, holder: _Holder) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "clinqa_request_duration_seconds",
            "HTTP request duration, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "clinqa_stage_duration_seconds",
            "Pipeline stage duration for /v1/ask, /v1/ask/stream and /v1/search (total: the whole pipeline).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "clinqa_answers_total",
            "Answers by status (answered, abstained) and whether every sentence was verified.",
            ["status", "verified"],
            registry=self.registry,
        )
        self.errors = Counter(
            "clinqa_errors_total",
            "Error responses (and error events of streams) by error code.",
            ["code"],
            registry=self.registry,
        )
        self.registry.register(_ServingCollector(holder))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).observe(seconds)

    def observe_stages(self, timings_ms: Mapping[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage in STAGES:  # a closed set of label values whatever a stage reports
                self.stages.labels(stage=stage).observe(ms / 1000)

    def observe_answer(self, answer: Answer) -> None:
        self.answers.labels(status=answer.status, verified=str(answer.verified).lower()).inc()

    def count_error(self, code: str) -> None:
        self.errors.labels(code=code).inc()

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics when the scraper asks for it) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
