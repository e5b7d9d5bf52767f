"""Observability shared by the gateway and the model server: JSON logs, OTel tracing, metrics.

Each service calls `configure_logging` and `configure_tracing` once from its `main()`; metrics
live in registries the services own and expose through `metrics_response`.
"""

from .logs import configure_logging
from .metrics import exemplar, metrics_response
from .tracing import configure_tracing, tracing_off_reason, tracing_requested

__all__ = [
    "configure_logging",
    "configure_tracing",
    "exemplar",
    "metrics_response",
    "tracing_off_reason",
    "tracing_requested",
]
