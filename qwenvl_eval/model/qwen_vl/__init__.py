"""A native (plain torch) implementation of the original Qwen-VL / Qwen-VL-Chat (v1) model,
loading the published checkpoint layout without its remote code."""
