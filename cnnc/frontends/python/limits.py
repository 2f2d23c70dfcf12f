"""The evaluator's bounds and control-flow signals, shared by the interpreter and the
builtins: step, loop, size and nesting caps (hostile input must stay bounded), the
exception that stops a run (`Budget`), and Python's return/break/continue/raise as the
interpreter carries them."""

from __future__ import annotations

import ast
import operator

from cnnc.support.diagnostics import Span

MAX_STEPS = 400_000          # expressions evaluated in one run of the script
WORK_PER_STEP = 8            # items or characters a builtin handles per step
MAX_LOOP = 10_000            # iterations of one loop
MAX_ITERATIONS = 50_000      # iterations of all loops together
MAX_CALL_DEPTH = 32          # helper functions calling helper functions
MAX_SEQUENCE = 100_000       # elements of a list, tuple or string the script builds
MAX_INT = 2 ** 63
MAX_ITEMS = 5_000_000        # elements of all the lists and tuples it builds together
MAX_DEPTH = 100              # values nested in values (a tuple in a tuple in ...)

PLAIN = (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset,
         range, slice, type(Ellipsis))
SCALARS = (int, float, complex, str, bytes, bool, type(None))


class Budget(Exception):
    def __init__(self, message: str, span: Span | None):
        super().__init__(message)
        self.message, self.span = message, span


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Raise(Exception):
    """A Python exception the script raises (`raise`, a failed assert, sys.exit())."""

    def __init__(self, exc=None, exits: bool = False, span: Span | None = None):
        self.exc, self.exits, self.span = exc, exits, span


# Exceptions of Python, each with its base (for `except LookupError:`)
EXCEPTIONS = {
    "BaseException": None, "Exception": "BaseException", "SystemExit": "BaseException",
    "KeyboardInterrupt": "BaseException", "ArithmeticError": "Exception",
    "ZeroDivisionError": "ArithmeticError", "OverflowError": "ArithmeticError",
    "AssertionError": "Exception", "AttributeError": "Exception", "ImportError": "Exception",
    "ModuleNotFoundError": "ImportError", "LookupError": "Exception", "IndexError": "LookupError",
    "KeyError": "LookupError", "NameError": "Exception", "OSError": "Exception",
    "IOError": "Exception", "FileNotFoundError": "OSError", "FileExistsError": "OSError",
    "RuntimeError": "Exception", "NotImplementedError": "RuntimeError",
    "RecursionError": "RuntimeError", "StopIteration": "Exception", "TypeError": "Exception",
    "ValueError": "Exception", "UnicodeError": "ValueError", "Warning": "Exception",
    "UserWarning": "Warning", "DeprecationWarning": "Warning", "MemoryError": "Exception",
    "EnvironmentError": "Exception", "PermissionError": "OSError",
}


def _all_plain(x) -> bool:
    """Whether a value holds plain Python values only, all the way down."""
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, SCALARS) or isinstance(v, (range, slice, type(Ellipsis))):
            continue
        if isinstance(v, (tuple, list, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        else:
            return False
    return True


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow, ast.BitOr: operator.or_, ast.BitAnd: operator.and_,
           ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
           ast.MatMult: operator.matmul}
