"""qwenvl-eval: benchmark evaluation harness for the Qwen-VL family."""

__version__ = "0.1.0"
