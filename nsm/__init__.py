"""The software NSM in PyTorch: layers, models, training, Monte-Carlo evaluation, baselines, data."""
