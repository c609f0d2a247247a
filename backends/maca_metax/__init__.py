"""ksdk's MACA backend for MetaX GPUs: mxcc and libmcruntime, called through cffi."""
