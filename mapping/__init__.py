"""Compiler (trained torch NSM -> crossbar program), runtime and in-situ learning."""
