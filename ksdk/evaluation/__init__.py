"""Evaluation: isolated worker processes, the local evaluator pool, the result cache, and `make_evaluator`."""

from __future__ import annotations

from typing import Any, Optional

from ksdk.interfaces.evaluator import Evaluator


def make_evaluator(backend: str, url: Optional[str] = None, workers: Optional[int] = None,
                   **options: Any) -> Evaluator:
    """The evaluator for a backend, through the `ksdk.evaluators` registry: local worker processes, or a client of
    the `ksdk serve` service at `url` (comma-separated URLs: several services of one backend used as one pool).
    `options` go to the evaluator's constructor (e.g. standby=False); None values are left out."""
    from ksdk.registry import load

    kwargs = {k: v for k, v in {"workers": workers, **options}.items() if v is not None}
    if url:
        cls = load("evaluators", "service")
        urls = [u.strip() for u in url.split(",") if u.strip()]
        if len(urls) > 1:
            from ksdk.service.multi import MultiEvaluator

            return MultiEvaluator([cls(u, backend=backend, **kwargs) for u in urls])
        return cls(urls[0] if urls else url, backend=backend, **kwargs)
    return load("evaluators", "local")(backend, **kwargs)
