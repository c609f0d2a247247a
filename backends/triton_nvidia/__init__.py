"""ksdk's Triton backend for NVIDIA GPUs: the Triton compiler and CUDA-event timing (interpreter on CPU)."""
