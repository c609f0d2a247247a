"""ksdk's CUDA C++ backend for NVIDIA GPUs through the shared native cffi binding."""
