"""ksdk-cpu-example: a third-party ksdk backend that compiles C candidates with the system compiler (cffi, CPU)."""

__version__ = "0.1.0"
