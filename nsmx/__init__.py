"""The application layer: the ``nsmx`` command (train, evaluate, demo, ...)."""
