"""Front ends: every kind of input becomes the same checked model (IR + Analysis).

cnn (the .cnn text: parse, resolve, infer, lint), python/ (Keras scripts and notebooks
read with ast), keras/ (.keras, .h5 and JSON model files), and dispatch (which of them
reads a path). Front ends never import a back end.
"""
