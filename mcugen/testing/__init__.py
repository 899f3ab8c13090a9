"""Test support: synthetic `.tflite` models (see `synth`)."""
from mcugen.testing.synth import (ModelBuilder, default_model, hybrid_model, large_random_model, random_model,
                                  residual_model)

__all__ = ["ModelBuilder", "random_model", "large_random_model", "residual_model", "default_model", "hybrid_model"]
