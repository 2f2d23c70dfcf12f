"""cnnc's version, where every part that writes it (ONNX metadata, summaries, the CLI)
can reach it without importing the API."""

__version__ = "0.1.0"
