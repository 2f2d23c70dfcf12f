"""Running models: onnxruntime sessions and their inputs (sessions), evaluation on
onnxruntime (onnx_eval), inference benchmarks (bench) and the PyTorch twin they compare
with. Composes the back ends; used by the API and the CLI.
"""
