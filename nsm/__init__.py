"""The software NSM in PyTorch: layers, models, training, Monte-Carlo evaluation, baselines, data.

Importing ``nsm`` only defines classes and functions (no data, no training, no compilation).
"""

from nsm.baselines import NoisyReLU, SignConv2d, SignLinear
from nsm.evaluate import mc_accuracy, mc_predict
from nsm.layers import BinarizeInput, BinaryLayer, NSMConv2d, NSMLinear, Stochastic, use_generator

__all__ = [
    "BinarizeInput",
    "BinaryLayer",
    "NSMConv2d",
    "NSMLinear",
    "NoisyReLU",
    "SignConv2d",
    "SignLinear",
    "Stochastic",
    "mc_accuracy",
    "mc_predict",
    "use_generator",
]
