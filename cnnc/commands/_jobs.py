"""Checking many files: one result per file, computed in worker processes on every core.

Each file's check is independent (the front ends keep no state between files), so the
files are handed out to a pool of processes, the largest first, and their results are
given back in the order of the paths, whatever order the workers finish in: the output
and the exit status are those of checking the files one after the other.

A file's check never takes the others down with it: an exception that escapes a front
end is that file's "internal error" (exit status 70, as for a single file), and a worker
process that dies (a crash in native code, the kernel's OOM killer) is found out by
checking the files it may have held again, each in a process of its own.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from cnnc.commands._walk import Target
from cnnc.support.diagnostics import CnncError, Diagnostic, UsageError, render_all, visible
from cnnc.support.names import shown_path

NO_MODEL = "found no Keras model in this file"
MIN_PARALLEL = 4          # fewer files than this: starting processes costs more than it gains
INTERNAL = 70             # the CLI's exit status for a bug in cnnc


@dataclass(frozen=True)
class Options:
    input_shape: tuple | None = None
    sizes: dict | None = None      # --define: open sizes fixed by name
    quiet: bool = False
    werror: bool = False
    color: bool = False
    notes: bool = True            # print a script's "checked N models" notes
    verbose: bool = False


@dataclass
class FileResult:
    """What checking one file found, in a form that crosses process boundaries."""

    path: str
    kind: str
    status: int = 0                         # 0 fine, 1 model errors, 2 unreadable, 70 a bug
    diagnostics: list[Diagnostic] = field(default_factory=list)   # as reported (-q: errors)
    # each diagnostic's place in the file itself: (line, column, end line, end column),
    # column None where unknown (a notebook's cell is found in its JSON); None: no place
    places: list[tuple | None] = field(default_factory=list)
    errors: int = 0
    warnings: int = 0
    models: list[dict] | None = None        # a script's models (variable, line, where, kind, ok)
    n_models: int = 0
    skipped: list[tuple[int, str]] | None = None    # a script's statements that build no model
    text: str = ""                          # what the text format prints for it (stderr)
    problem: str | None = None              # unreadable, or a bug: the message
    problem_notes: list[str] = field(default_factory=list)
    no_model: bool = False                  # found in a folder, uses Keras, builds no model

    @property
    def checked(self) -> bool:
        return self.status in (0, 1)


def check_target(target: Target, opts: Options) -> FileResult:
    """Check one file; never raises (a bug in cnnc becomes the file's status 70)."""
    try:
        return _check(target, opts)
    except CnncError as e:            # a reader that stops at its first problem
        return _failed(target, opts, e)
    except UsageError as e:
        return _problem(target, 2, e.message, e.notes)
    except MemoryError:
        return _problem(target, 2, f"out of memory while checking '{visible(target.path)}'")
    except RecursionError:
        return _problem(target, INTERNAL, f"internal error while checking '{visible(target.path)}': "
                        "RecursionError: too deeply nested", _bug_notes())
    except Exception as e:  # noqa: BLE001 - one file's bug must not lose the others' results
        return _problem(target, INTERNAL, f"internal error while checking '{visible(target.path)}': "
                        f"{type(e).__name__}: {visible(str(e))}", _bug_notes())


def _failed(target: Target, opts: Options, e: CnncError) -> FileResult:
    diags = [d for d in e.diagnostics if d.is_error or not opts.quiet]
    errors = sum(d.is_error for d in e.diagnostics)
    return FileResult(target.path, target.kind, max(e.exit_code, 1 if errors or opts.werror else 0),
                      diags, _places(target.path, diags), errors, len(e.diagnostics) - errors,
                      text=render_all(diags, e.source, color=opts.color))


def _bug_notes() -> list[str]:
    notes = ["this is a bug in cnnc; set CNNC_DEBUG=1 for the traceback and report it"]
    if os.environ.get("CNNC_DEBUG"):
        notes.append(traceback.format_exc().rstrip())
    return notes


def _problem(target: Target, status: int, message: str, notes: Sequence[str] = ()) -> FileResult:
    text = "\n".join([f"cnnc: error: {message}", *(f"  note: {n}" for n in notes)])
    return FileResult(target.path, target.kind, status, problem=message,
                      problem_notes=list(notes), text=text)


def _check(target: Target, opts: Options) -> FileResult:
    from cnnc.frontends.dispatch import check_file, check_script_file
    if target.kind == "script":
        checked = check_script_file(target.path, None, opts.input_shape, whole=True,
                                    sizes=opts.sizes)
    else:
        checked = check_file(target.path, input_shape=opts.input_shape, sizes=opts.sizes)
    sc = checked.script
    all_diags = list(checked.diagnostics)
    no_model = False
    if sc is not None and not sc.models and not target.named:
        # a module that imports Keras without building a model (utilities, callbacks):
        # nothing to check in it, which is not the user's error when a folder is searched
        all_diags = [d for d in all_diags if not (d.span is None and d.message == NO_MODEL)]
        no_model = True
    shown = [d for d in all_diags if d.is_error or not opts.quiet]
    errors = sum(d.is_error for d in all_diags)
    failed = errors or (opts.werror and all_diags)
    result = FileResult(target.path, target.kind, 1 if failed else 0, shown, [],
                        errors, len(all_diags) - errors, no_model=no_model)
    result.places = _places(target.path, shown)
    if sc is not None:
        result.models = [m.as_dict() for m in sc.models]
        result.n_models = len(sc.models)
        result.skipped = list(sc.skipped)
    else:
        result.n_models = 1 if checked.ir is not None else 0
    parts = [render_all(shown, checked.source, color=opts.color)] if shown else []
    if sc is not None and not opts.quiet and opts.notes and not no_model:
        parts.append(script_note(target.path, sc, opts.verbose))
    result.text = "\n".join(parts)
    return result


def _places(path: str, diags: Sequence[Diagnostic]) -> list[tuple | None]:
    """Where each diagnostic is in the file itself: a notebook's cell line is found in
    its JSON text; a Keras model file's diagnostics name a layer, not a line."""
    cells = [d.cell for d in diags if d.cell]
    lines = None
    if cells and path.lower().endswith(".ipynb"):
        from cnnc.commands._notebook import notebook_lines
        lines = notebook_lines(path)
    out: list[tuple | None] = []
    for d in diags:
        s = d.span
        if s is None:
            out.append(None)
        elif d.cell:
            line = (lines or {}).get(tuple(d.cell))
            out.append((line, None, line, None) if line else None)
        else:
            out.append((s.line, s.column, s.end_line, s.end_column))
    return out


def script_note(path: str, sc, verbose: bool) -> str:
    """A Keras script: which models were checked, how many statements were skipped."""
    found = ", ".join(f"'{m.var}' ({m.where})" for m in sc.models) or "none"
    path = shown_path(path)
    lines = [f"{path}: note: checked {len(sc.models)} model{'s' if len(sc.models) != 1 else ''}: "
             f"{found}"]
    for sig, line, why in getattr(sc, "builders", ()):   # builders the script never calls
        lines.append(visible(f"{path}: note: {sig} (line {line}) builds a model but {why}; check "
                             f"it with --model \"{sig.split('(')[0]}(...)\""))
    n = len(sc.skipped)
    if n:
        lines.append(f"{path}: note: skipped {n} statement{'s' if n != 1 else ''} that "
                     f"build{'s' if n == 1 else ''} no model (printing, plotting, training loops, ...)"
                     + ("" if verbose else "; -v lists them"))
        if verbose:
            lines += [visible(f"  {sc.script.where(line) if sc.script else line}: {code}")
                      for line, code in sc.skipped]
    return "\n".join(lines)


# --- running them ---------------------------------------------------------------------

def default_jobs() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_all(targets: Sequence[Target], opts: Options, jobs: int,
              check: Callable[[Target, Options], FileResult] = check_target) -> Iterator[FileResult]:
    """Every target's result, in the targets' order, each given as soon as it and those
    before it are done."""
    if jobs <= 1 or len(targets) < MIN_PARALLEL:
        for t in targets:
            yield check(t, opts)
        return
    yield from _in_pool(targets, opts, min(jobs, len(targets)), check)


def _context():
    """fork where it is safe and fast (Linux: the workers start with cnnc's modules already
    imported); spawn elsewhere (macOS and Windows)."""
    import multiprocessing as mp
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _worker_init() -> None:
    # Ctrl-C reaches every process of the terminal's group: only the parent answers it
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm(targets: Sequence[Target]) -> None:
    """Import the front ends (and load the grammar) once, before the workers are forked."""
    kinds = {t.kind for t in targets}
    import cnnc.frontends.dispatch  # noqa: F401
    if "script" in kinds:
        import cnnc.frontends.python  # noqa: F401
    if "cnn" in kinds or "script" in kinds:
        from cnnc.frontends.cnn import check_text
        check_text("input (1,)\n")


def _in_pool(targets: Sequence[Target], opts: Options, jobs: int, check) -> Iterator[FileResult]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = _context()
    if ctx.get_start_method() == "fork":
        _warm(targets)
    _flush()
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init)
    futures: dict[int, object] = {}
    try:
        try:
            # the largest files first: the last file handed out is then a short one
            for i in sorted(range(len(targets)), key=lambda i: -targets[i].size):
                futures[i] = pool.submit(check, targets[i], opts)
        except BrokenProcessPool:
            pass                  # a worker died already: what was not handed out is checked alone
        for i, target in enumerate(targets):
            result = _result(futures.get(i), target)
            if result is None:
                # its worker died (or the pool did before it was handed out): checked again
                # alone, so that a file that kills its process is known and the others are kept
                result = _alone(target, opts, ctx, check)
            yield result
    except BaseException:                 # Ctrl-C, or the reader stopped: do not wait for workers
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _result(future, target: Target) -> FileResult | None:
    """The pool's result for a file, or None when its process died before giving it."""
    from concurrent.futures.process import BrokenProcessPool
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as e:  # noqa: BLE001 - a result that could not come back
        return _problem(target, INTERNAL, f"internal error while checking '{visible(target.path)}': "
                        f"{type(e).__name__}: {visible(str(e))}", _bug_notes()[:1])


def _alone(target: Target, opts: Options, ctx, check) -> FileResult:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    _flush()
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init) as pool:
        try:
            return pool.submit(check, target, opts).result()
        except BrokenProcessPool:
            return _problem(target, INTERNAL,
                            f"internal error while checking '{visible(target.path)}': the process "
                            "checking it stopped without a result (killed, out of memory, or a crash "
                            "in native code)",
                            _bug_notes()[:1])


def _flush() -> None:
    """A forked worker inherits the parent's unwritten output; write it out first so that
    the worker, which flushes at exit, cannot print it twice."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
