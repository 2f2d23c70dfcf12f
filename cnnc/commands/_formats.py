"""What `cnnc check` prints for machines and people: the closing summary line, JSON,
SARIF 2.1.0 (code scanning: GitHub, GitLab, Azure DevOps, IDE viewers) and GitHub Actions
workflow annotations.

Diagnostics carry a message, not a code; the SARIF rule and the annotation title come from
a small table that sorts messages into kinds (shape, syntax, unknown-name, ...), the
same message always into the same kind, so that code scanning can follow an alert from
run to run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote

from cnnc.commands._jobs import FileResult
from cnnc.support.names import json_dumps, path_text
from cnnc.support.version import __version__


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    pattern: re.Pattern | None


def _rule(rule_id: str, description: str, *patterns: str) -> Rule:
    return Rule(rule_id, description, re.compile("|".join(patterns)) if patterns else None)


# First match wins; the patterns follow the wording of cnnc's messages.
RULES: tuple[Rule, ...] = (
    _rule("syntax", "The text does not parse (a .cnn statement, or Python).",
          r"was never closed", r"does not match '", r"needs parentheses", r"^unexpected ",
          r"unterminated", r"invalid syntax", r"^expected ", r"SyntaxError", r"indent"),
    _rule("unknown-name", "An unknown layer, activation, optimizer, loss, metric or name.",
          r"^unknown ", r"is not defined", r"^unknown or unsupported"),
    _rule("unsupported", "Valid Keras that cnnc does not support.",
          r"does not support", r"not supported", r"cannot follow"),
    _rule("argument", "A layer, compile() or fit() argument Keras would refuse.",
          r"^`[^`]+` ", r"unexpected keyword argument", r"missing .*argument", r"positional argument",
          r"got multiple values", r"takes .* arguments?"),
    _rule("input", "The model's input is missing.", r"no input shape", r"has no input"),
    _rule("shape", "A shape that does not fit: a layer's input, a merge, a reshape, a kernel.",
          r"does not fit", r"expects a .*input", r"cannot merge", r"cannot fit", r"divisible",
          r"does not divide", r"\bshape\b", r"axis", r"at least"),
    _rule("graph", "How layers are connected: names, reuse, unused or unreachable layers.",
          r"duplicate layer name", r"called a second time", r"does not reach", r"never called",
          r"never used", r"\bcycle\b", r"not connected", r"is the last layer"),
    _rule("training", "Compile and fit settings: losses, optimizers, activations at the output.",
          r"crossentropy", r"softmax on", r"optimizer", r"\bloss\b"),
    _rule("error", "Any other error in a model."),
    _rule("warning", "Any other warning about a model."),
)
_BY_ID = {r.id: r for r in RULES}


def rule_of(message: str, severity: str) -> Rule:
    """The kind of a diagnostic, from its message (the catch-alls by severity)."""
    for r in RULES:
        if r.pattern is not None and r.pattern.search(message):
            return r
    return _BY_ID["error" if severity == "error" else "warning"]


# --- the closing line ------------------------------------------------------------------

@dataclass
class Totals:
    files: int = 0            # files checked
    models: int = 0
    errors: int = 0
    warnings: int = 0
    passed_over: int = 0      # found in folders, no Keras in them
    unreadable: int = 0       # files and folders that could not be read
    internal: int = 0         # files whose check hit a bug in cnnc
    seconds: float = 0.0

    def add(self, r: FileResult) -> None:
        if r.checked:
            self.files += 1
            self.models += r.n_models
            self.errors += r.errors
            self.warnings += r.warnings
        elif r.status == 2:
            self.unreadable += 1
        else:
            self.internal += 1

    def as_dict(self) -> dict:
        return {"files": self.files, "models": self.models, "errors": self.errors,
                "warnings": self.warnings, "skipped_without_keras": self.passed_over,
                "unreadable": self.unreadable, "internal_errors": self.internal,
                "seconds": round(self.seconds, 3)}


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary_line(t: Totals) -> str:
    """`checked 12 files, 15 models: 2 errors, 1 warning (0.84 s)`, and what was left out."""
    line = (f"checked {_n(t.files, 'file')}, {_n(t.models, 'model')}: {_n(t.errors, 'error')}, "
            f"{_n(t.warnings, 'warning')} ({t.seconds:.2f} s)")
    extra = []
    if t.unreadable:
        extra.append(f"{_n(t.unreadable, 'path')} could not be read")
    if t.internal:
        extra.append(f"{_n(t.internal, 'file')} hit an internal error")
    if t.passed_over:
        extra.append(f"{_n(t.passed_over, 'file')} without Keras skipped")
    return line + ("; " + ", ".join(extra) if extra else "")


# --- JSON ----------------------------------------------------------------------------------

def json_entry(r: FileResult) -> dict:
    """One file's record, as `cnnc check --format json` has always written it. Paths as
    path_text writes them: a file name's bytes that are not UTF-8 as \\xff."""
    path = path_text(r.path)
    if r.status == 2:
        return {"path": path, "readable": False, "error": r.problem, "diagnostics": []}
    if not r.checked:
        return {"path": path, "readable": True, "ok": False, "internal_error": r.problem,
                "diagnostics": []}
    entry = {"path": path, "readable": True, "ok": r.status == 0,
             "diagnostics": [_with_path_text(d.as_dict()) for d in r.diagnostics]}
    if r.models is not None:
        entry["models"] = r.models
        entry["skipped"] = [{"line": line, "code": code} for line, code in r.skipped or ()]
    return entry


def _with_path_text(record: dict) -> dict:
    if isinstance(record.get("path"), str):
        record["path"] = path_text(record["path"])
    return record


def to_json(results: Sequence[FileResult], status: int, totals: Totals | None) -> str:
    doc: dict = {"files": [json_entry(r) for r in results], "exit_status": status}
    if totals is not None:
        doc["summary"] = totals.as_dict()
    return json_dumps(doc) + "\n"


# --- SARIF 2.1.0 ------------------------------------------------------------------------------

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _uri(path: str) -> tuple[str, bool]:
    """A relative path as a relative URI reference (to %SRCROOT%, the working folder), an
    absolute one as a file URI."""
    norm = os.path.normpath(path)
    if os.path.isabs(norm):
        from pathlib import Path
        return Path(norm).as_uri(), False
    # the name's own bytes, percent-encoded: a name that is not UTF-8 stays the file's name
    return quote(os.fsencode(norm.replace(os.sep, "/"))), True


_HELP_STARTS = ("did you mean", "use ", "add ", "remove ", "try ")     # as diagnostics.render labels


def _text(d, r: FileResult) -> str:
    """The message with its notes, labelled as the text format labels them; a notebook's
    cell named."""
    where = f"cell {d.cell[0]}, line {d.cell[1]}: " if d.cell else ""
    notes = [f"{'help' if n.startswith(_HELP_STARTS) else 'note'}: {n}" for n in d.notes]
    return "\n".join([where + d.message, *notes])


def _region(place) -> dict:
    if place is None:
        return {"startLine": 1}           # the file as a whole (a Keras file names a layer)
    line, col, end_line, end_col = place
    region: dict = {"startLine": line}
    if col is not None:
        region["startColumn"] = col
        region["endLine"] = end_line
        if end_col is not None and (end_line, end_col) > (line, col):
            region["endColumn"] = end_col
    return region


def to_sarif(results: Sequence[FileResult], status: int, cwd: str | None = None) -> str:
    rules = [{"id": r.id, "name": r.id, "shortDescription": {"text": r.description},
              "defaultConfiguration": {"level": "warning" if r.id == "warning" else "error"}}
             for r in RULES]
    index = {r.id: i for i, r in enumerate(RULES)}
    out_results, notifications = [], []
    for fr in results:
        uri, relative = _uri(fr.path)
        location = {"uri": uri, **({"uriBaseId": "%SRCROOT%"} if relative else {})}
        if not fr.checked:
            notifications.append({
                "level": "error",
                "message": {"text": "\n".join([fr.problem or "", *fr.problem_notes])},
                "locations": [{"physicalLocation": {"artifactLocation": location}}],
                "descriptor": {"id": "unreadable" if fr.status == 2 else "internal-error"}})
            continue
        for d, place in zip(fr.diagnostics, fr.places):
            rule = rule_of(d.message, d.severity)
            out_results.append({
                "ruleId": rule.id, "ruleIndex": index[rule.id],
                "level": "error" if d.is_error else "warning",
                "message": {"text": _text(d, fr)},
                "locations": [{"physicalLocation": {"artifactLocation": location,
                                                    "region": _region(place)}}]})
    from pathlib import Path
    run = {
        "tool": {"driver": {"name": "cnnc", "version": __version__, "semanticVersion": __version__,
                            "rules": rules}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(cwd or os.getcwd()).as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": out_results,
        "invocations": [{"executionSuccessful": status in (0, 1), "exitCode": status,
                         "toolExecutionNotifications": notifications}],
    }
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json_dumps(doc) + "\n"


# --- GitHub Actions workflow commands -----------------------------------------------------------

def _escape_data(text: str) -> str:
    """A workflow command's message: %, CR and LF escaped (as @actions/core does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value: also ':' and ','."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, path: str, message: str, place=None, title: str | None = None) -> str:
    props = [f"file={_escape_property(path)}"]
    if place is not None:
        line, col, end_line, end_col = place
        props.append(f"line={line}")
        if end_line is not None and end_line != line:
            props.append(f"endLine={end_line}")
        if col is not None:
            props.append(f"col={col}")
            if end_col is not None and end_line == line and end_col > col:
                props.append(f"endColumn={end_col}")
    if title:
        props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def to_github(results: Sequence[FileResult]) -> str:
    lines = []
    for fr in results:
        path = path_text(os.path.normpath(fr.path).replace(os.sep, "/"))
        if not fr.checked:
            lines.append(annotation("error", path, "\n".join([fr.problem or "", *fr.problem_notes]),
                                    title="cnnc (unreadable)" if fr.status == 2 else "cnnc (internal error)"))
            continue
        for d, place in zip(fr.diagnostics, fr.places):
            lines.append(annotation("error" if d.is_error else "warning", path, _text(d, fr), place,
                                    title=f"cnnc ({rule_of(d.message, d.severity).id})"))
    return "".join(line + "\n" for line in lines)
