"""The ground floor: what every part needs and nothing of cnnc above it.

Diagnostics and their errors, reading the user's files within limits, atomic writes
that never lose data, the resource guard, training progress, datasets, weight files
(.npz) and the version. Imports nothing of cnnc outside this folder.
"""
