"""Scale-out evaluators for clusters (Ray), imported lazily."""
