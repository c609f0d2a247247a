"""The evolution loop: asyncio pipeline, budgets, progress, reports, and the Python API."""
