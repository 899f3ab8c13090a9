"""Model readers: each turns a file into the one IR (`mcugen.ir.Graph`)."""
from mcugen.frontend.tflite_reader import SUPPORTED_OPS, load_tflite

__all__ = ["load_tflite", "SUPPORTED_OPS"]
