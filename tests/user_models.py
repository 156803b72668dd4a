"""A user's own module for the deploy tests, imported by their configs
(custom_imports): a neck that pools the magnitude of each feature map's
2-D Fourier transform, which ONNX has no operator for at mmdeploy's
opset 11."""
import torch
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module(name='TestSpectralPooling', force=True)
class SpectralPooling(nn.Module):
    """(N, C, H, W) -> (N, C): the mean magnitude of the spectrum."""

    def forward(self, inputs):
        if isinstance(inputs, tuple):
            return tuple(self.forward(x) for x in inputs)
        return torch.fft.rfft2(inputs).abs().mean(dim=(2, 3))
