"""Physics of one cell / one neuron, vectorised over arrays of cells (numpy, numba, scipy only)."""
