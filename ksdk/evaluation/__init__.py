"""Evaluation: isolated worker processes, the local evaluator pool, the result cache."""
