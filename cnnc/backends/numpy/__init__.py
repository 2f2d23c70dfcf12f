"""The NumPy reference implementation: forward, backward, initializers, training maths.

float32 throughout, NHWC (channels_last) like Keras.
"""
