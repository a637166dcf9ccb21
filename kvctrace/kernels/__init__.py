"""Numba kernels: numpy arrays and scalars in, numpy arrays and scalars out."""
