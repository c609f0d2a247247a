"""Mutators: the LLM mutator (litellm) and the parameter mutator (no LLM)."""
