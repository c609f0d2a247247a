"""The evolution loop: asyncio pipeline, budgets, progress, reports, and the Python API."""

_API = ("evolve", "resume", "evolve_async", "resume_async", "RunSummary")


def __getattr__(name):  # `from ksdk.evolution import evolve` without importing the loop at package import
    if name in _API:
        from ksdk.evolution import api

        return getattr(api, name)
    raise AttributeError(f"module 'ksdk.evolution' has no attribute '{name}'")
