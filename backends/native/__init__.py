"""Native backends through cffi: one binding, dialects as data (CUDA, MACA)."""
