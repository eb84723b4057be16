"""Tiles, tiled layers, sampling kernels, periphery and IR drop (imports devices, numpy, numba, scipy)."""
