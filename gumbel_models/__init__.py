"""Learning categorical distributions with a Gumbel-softmax GAN, batched over keys (pure PyTorch)."""
from .config import GANConfig, resolve_device
from .divergence import divergences, js_divergence, kl_divergence, total_variation
from .gumbel_softmax import check_temperature, gumbel_softmax_sample
from .histogram import EmpiricalHistogram
from .temperature import TemperatureSchedule
from .trainer import GumbelGAN

__all__ = [
    "GANConfig", "GumbelGAN", "EmpiricalHistogram", "TemperatureSchedule", "check_temperature",
    "divergences", "gumbel_softmax_sample", "js_divergence", "kl_divergence", "resolve_device",
    "total_variation",
]
