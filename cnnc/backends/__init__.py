"""Back ends: what is made from a checked model's Analysis and weights.

onnx/ (lowering and verification), numpy/ (the reference forward and backward,
training, checkpoints), keras/ (a .keras file Keras loads), report/ (summary and
plot). A back end imports analysis and support, never the API, the CLI, a front end
or another back end.
"""
