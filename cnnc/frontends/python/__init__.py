"""The front end for Keras code as written: `.py` scripts and `.ipynb` notebooks.

The Python is read with the standard library's `ast` and never executed or
imported (source.py); a small static evaluator follows the code that builds models
(evaluator.py); each model found becomes cnnc's own statements (emit.py), which
resolve and infer check exactly like a .cnn file (check.py).
"""

from cnnc.frontends.python.check import FoundModel, ScriptCheck, check_script, is_script, parse_input_shape

__all__ = ["FoundModel", "ScriptCheck", "check_script", "is_script", "parse_input_shape"]
