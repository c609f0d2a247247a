"""Evaluation as an HTTP service (FastAPI + uvicorn) and its client evaluator."""
