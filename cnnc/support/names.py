"""Names and paths are data with several sinks: the one place that knows each sink's rules.

A user string (a layer, input or model name; a file path; a metric's name) goes to places
with different rules:

- protobuf (ONNX), HDF5 (Keras weights), zip member names (.npz keys, .keras) and JSON
  want UTF-8: a lone surrogate ("\\udcff", what Python makes of the byte 0xff in a file
  name) cannot be encoded; HDF5 strings cannot hold NUL;
- a zip member name is at most 65,535 bytes: an .npz key "<layer>/<weight>.npy" too;
- Graphviz expands \\N, \\G, \\L, \\E, \\T, \\H in its labels (the node's, the graph's
  name), even in HTML-like labels and after entity decoding; Mermaid labels are markup;
- the terminal runs control characters and escape sequences (diagnostics.visible);
- JSON has no NaN or Infinity (Python's json writes them, and strict parsers refuse them).

Names are checked once, where the IR is built (`name_problem`, from analysis/resolve), so a
bad name is an error of `cnnc check` before any long work; paths are made text for each
sink here (`path_text`), and every sink writer calls its encoder from this module.
Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# first_surrogate and path_text live with `visible` in diagnostics (its renderer needs them)
from cnnc.support.diagnostics import UsageError, first_surrogate, path_text, visible  # noqa: F401

_SURROGATE = re.compile("[\ud800-\udfff]")

ZIP_NAME_LIMIT = 65_535          # bytes of one zip member name (the format's 16-bit field)
# A layer name ends up inside longer keys: "<layer>/<weight>.npy" in an .npz, a checkpoint's
# "<slot>:<layer>/<weight>.npy", Keras's "<model>/<layer>/<weight>": room for what cnnc adds.
MAX_NAME_BYTES = ZIP_NAME_LIMIT - 1024

def name_problem(name: str) -> str | None:
    """Why `name` cannot name a layer, an input or a model (None when it can): every
    sink a name goes to (ONNX, HDF5, .npz, JSON) must be able to hold it."""
    bad = first_surrogate(name)
    if bad is not None:
        return (f"it is not valid Unicode text: it holds the lone surrogate U+{ord(bad):04X}, "
                "which UTF-8 cannot encode (ONNX, Keras files, .npz and JSON need UTF-8)")
    if "\x00" in name:
        return "it holds a NUL character, which HDF5 strings (Keras files) cannot hold"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return (f"it is {size:,} bytes long in UTF-8, over cnnc's limit of {MAX_NAME_BYTES:,} "
                f"(an .npz weight key '<name>/<weight>.npy' must fit zip's {ZIP_NAME_LIMIT:,} bytes)")
    return None


def shown(name: str, limit: int = 60) -> str:
    """A name in a message: terminal-safe and cut to `limit` characters."""
    text = visible(name)
    return text if len(text) <= limit else text[:limit] + f"... ({len(name):,} characters)"


# --- paths -------------------------------------------------------------------------------

def shown_path(path: Any) -> str:
    """A path in a message to the terminal: UTF-8 text, control characters escaped."""
    return visible(path_text(path))


# --- text for each sink ------------------------------------------------------------------

def utf8_text(text: str) -> str:
    """`text` made valid UTF-8 (a lone surrogate as its escape): for protobuf strings and
    metadata, which refuse what UTF-8 cannot encode."""
    if first_surrogate(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def npz_key(key: str, what: str = "an array") -> str:
    """`key` as the name of an .npz member (key + '.npy'), or UsageError: UTF-8, and within
    zip's limit on a member name."""
    problem = name_problem(key.rsplit("/", 1)[0]) if first_surrogate(key) or "\x00" in key else None
    size = len(key.encode("utf-8", "surrogatepass")) + 4
    if problem is None and size > ZIP_NAME_LIMIT:
        problem = f"its name is {size:,} bytes, over zip's limit of {ZIP_NAME_LIMIT:,}"
    if problem:
        raise UsageError(f"cannot write {what} named '{shown(key)}' to an .npz: {problem}")
    return key


def json_value(value: Any) -> Any:
    """`value` as JSON can hold it: NaN and infinities as null (JSON has neither), strings
    with lone surrogates escaped, tuples as lists, keys as str. Iterative: a deep value
    never overflows the stack."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return utf8_text(value)
    if not isinstance(value, (dict, list, tuple)):
        return _scalar(value)
    root: list = [None]
    stack = [(root, 0, value)]
    while stack:
        holder, key, v = stack.pop()
        if isinstance(v, dict):
            out: Any = {}
            for k, item in v.items():
                k = utf8_text(k) if isinstance(k, str) else str(_scalar(k))
                out[k] = None
                stack.append((out, k, item))
        elif isinstance(v, (list, tuple)):
            out = [None] * len(v)
            stack.extend((out, i, item) for i, item in enumerate(v))
        elif isinstance(v, float):
            out = v if math.isfinite(v) else None
        elif isinstance(v, str):
            out = utf8_text(v)
        else:
            out = _scalar(v)
        holder[key] = out
    return root[0]


def _scalar(v: Any) -> Any:
    """NumPy scalars and other numbers as Python's."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    item = getattr(v, "item", None)       # a NumPy scalar
    if callable(item):
        try:
            return json_value(item())
        except (TypeError, ValueError):
            pass
    return utf8_text(str(v))


def json_dumps(value: Any, indent: int | None = 2) -> str:
    """Valid JSON, always: `json_value`, then json.dumps with allow_nan=False."""
    return json.dumps(json_value(value), indent=indent, allow_nan=False)


# Graphviz expands a backslash followed by one of its escape letters (\N the node's name,
# \G the graph's, \L, \E, \T, \H, \n, \l, \r), and reads \\ as one backslash: once in an
# HTML-like label (after entities are decoded, so &#92; is no way out), twice in a quoted
# attribute such as a tooltip (Graphviz 2.43, checked against the real `dot` in
# tests/test_plot.py). So a backslash is written as two in HTML-like labels, as four in
# tooltips: the text shown is the name, exactly, and nothing is expanded.

# Graphviz also reads an HTML-like label as XML (expat): U+FFFE and U+FFFF are not XML
# characters (control characters are escaped already, by `visible`), and a label over
# 16,384 bytes is refused; a drawing shows long names cut (`cut`), the file keeps them.
_NOT_XML = re.compile("[\ufffe\uffff]")
LABEL_CHARS = 200          # of a name in a drawing's box
TEXT_CHARS = 1_000         # of a shape list ("[(None, 8), (None, 8), ...]")


def cut(text: str, limit: int | None) -> str:
    """`text`, at most `limit` characters, an ellipsis saying how many there were."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text):,} characters)"


def _dot_text(text: str, limit: int | None) -> str:
    text = utf8_text(visible(cut(text, limit)))
    return _NOT_XML.sub(lambda m: _escape_char(m.group(0)), text)


def _escape_char(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def dot_html(text: str, limit: int | None = None) -> str:
    """Text inside a Graphviz HTML-like label: one line (control characters as their
    escapes), markup as entities, every backslash a plain character, XML characters only,
    at most `limit` characters of `text`."""
    text = _dot_text(text, limit)
    text = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))
    return text.replace("\\", "\\\\")


def dot_string(text: str, limit: int | None = None) -> str:
    """A DOT double-quoted string for an escString attribute (a tooltip): one line, `"`
    escaped, every backslash a plain character, XML characters only (an SVG holds it)."""
    text = _dot_text(text, limit).replace("\\", "\\" * 4).replace('"', '\\"')
    return f'"{text}"'


_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 _.,:()\-]")


def mermaid(text: str, limit: int | None = None) -> str:
    """Text for a Mermaid label: anything beyond letters, digits and plain punctuation as an
    entity code (#92; for a backslash), so no user string is markup; at most `limit`
    characters of `text`."""
    return "".join(c if _MERMAID_SAFE.fullmatch(c) else f"#{ord(c)};"
                   for c in utf8_text(visible(cut(text, limit))))


def yaml_string(text: str) -> str:
    """A YAML double-quoted string (Mermaid's front matter): JSON's escapes, ASCII only."""
    return json.dumps(utf8_text(visible(text)))
