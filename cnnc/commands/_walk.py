"""Which files `cnnc check PATH...` checks: the files named, and in each folder named the
.cnn files, Keras model files and Keras scripts and notebooks, found the way linters find
them.

A folder is searched as git would list it: `.gitignore` files (the repository's, from its
root down, and `.git/info/exclude`) are honoured, and so are common excludes nobody wants
checked (hidden folders, virtual environments, build and package folders). `--exclude`
adds gitignore-style patterns. Files are sorted by path, so the output never depends on the
order the file system or the worker processes give.

A cheap pre-filter decides, without evaluating anything, which found files can hold a
model: Python code and notebooks that neither import Keras (or TensorFlow) nor compile and
fit a model, JSON that is not a Keras model config, HDF5 files without a `model_config`
(weights, data sets) are passed over and only counted. Files named on the command line
are checked whatever they are (as a single `cnnc check FILE` always did), unless
`--skip-non-models` asks for the same filter (pre-commit passes every changed .py file).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from cnnc.support.diagnostics import UsageError, visible

# Folder names never searched (besides hidden ones): what build tools, package managers
# and environments create. Named on the command line, they are searched all the same.
EXCLUDED_DIRS = frozenset({
    "__pycache__", "__pypackages__", "_build", "buck-out", "build", "dist", "node_modules",
    "site-packages", "venv", "htmlcov",
})
SCRIPT_SUFFIXES = (".py", ".ipynb")
KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")
SUFFIXES = (".cnn", *SCRIPT_SUFFIXES, *KERAS_FILE_SUFFIXES)

# What the pre-filter reads: enough for the sign it looks for, never a whole data file.
_SCRIPT_LIMIT = 16 * 2**20        # the Python front end's own limit: it says why when larger
_HDF5_HEAD = 2**20                # Keras writes model_config into the root's first object header
_JSON_HEAD = 4096                 # model.to_json() starts with its class name
_KERAS_JSON = re.compile(rb'"class_name"\s*:\s*"(Sequential|Functional|Model)"')
# Code that builds a Keras model imports Keras (or TensorFlow); in a notebook the import is
# inside a JSON string. Code that only calls a model builder from a module of its own
# (`model = build(); model.compile(...); model.fit(...)`) compiles and fits a model.
_IMPORTS_KERAS = re.compile(rb'(?:^|[\s"\';])(?:import|from)[ \t]+(?:keras|tensorflow|tf_keras)\b', re.M)


@dataclass(frozen=True)
class Target:
    """One file to check: its path as shown, what reads it, and whether it was named."""

    path: str
    kind: str            # "cnn", "keras" (a model file) or "script" (.py, .ipynb)
    named: bool          # named on the command line (a missing "no model" is then an error)
    size: int = 0        # for handing the largest files out first


@dataclass
class Found:
    targets: list[Target] = field(default_factory=list)
    passed_over: int = 0                                   # files the pre-filter left out
    unreadable: list[tuple[str, str]] = field(default_factory=list)   # (folder, why)
    folders: int = 0                                       # folders named on the command line


def kind_of(path: str) -> str:
    """Which front end reads `path` (by its suffix; anything else is read as .cnn text)."""
    name = path.lower()
    if name.endswith(SCRIPT_SUFFIXES):
        return "script"
    if name.endswith(KERAS_FILE_SUFFIXES):
        return "keras"
    return "cnn"


def may_hold_model(path: str) -> bool:
    """The pre-filter: could this file hold a model? Reads at most a bounded head of the
    file (or a script, which the checker would read whole anyway) and evaluates nothing.
    A file it cannot read is kept, so that the checker says why."""
    name = path.lower()
    if not name.endswith(SUFFIXES):
        return False
    if name.endswith((".cnn", ".keras")):
        return True
    if name.endswith((".weights.h5", ".weights.hdf5")):
        return False                     # Keras 3 weights: no model in them
    limit = (_SCRIPT_LIMIT if name.endswith(SCRIPT_SUFFIXES)
             else _HDF5_HEAD if name.endswith((".h5", ".hdf5")) else _JSON_HEAD)
    try:
        with open(path, "rb") as f:
            head = f.read(limit + 1)
    except OSError:
        return True
    if name.endswith(SCRIPT_SUFFIXES):
        return (len(head) > limit or _IMPORTS_KERAS.search(head) is not None
                or (b".compile(" in head and b".fit(" in head))
    if name.endswith(".json"):
        return _KERAS_JSON.search(head) is not None
    return head.startswith(b"\x89HDF\r\n\x1a\n") and b"model_config" in head


class _Ignores:
    """gitignore rules: the repository's .gitignore files from its root down, each applying
    to its own folder's subtree, the deepest rule that matches deciding (as git does);
    .git/info/exclude below the root's .gitignore."""

    def __init__(self) -> None:
        self._specs: dict[Path, list] = {}        # folder -> its specs, the decisive one last

    def load(self, folder: Path) -> None:
        """Read `folder`/.gitignore (once)."""
        if folder not in self._specs:
            self._specs[folder] = [s for s in (_read_spec(folder / ".gitignore"),) if s]

    def load_above(self, folder: Path) -> None:
        """The repository's .git/info/exclude and the .gitignore files from its root
        down to `folder` (whose own the search reads)."""
        root = _repository_root(folder)
        if root is None:
            return
        parts = folder.relative_to(root).parts
        for i in range(max(len(parts), 1)):
            self.load(root.joinpath(*parts[:i]))
        exclude = _read_spec(root / ".git" / "info" / "exclude")
        if exclude is not None:
            self._specs.setdefault(root, []).insert(0, exclude)

    def ignored(self, path: Path, is_dir: bool, root: Path | None = None) -> bool:
        """Whether git would ignore `path`. A rule that ignores `root` itself (a folder
        named on the command line) does not count: naming a folder asks for it."""
        for base in path.parents:
            for spec in reversed(self._specs.get(base, ())):
                rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                result = spec.check_file(rel)
                if result.include is None:
                    continue
                if root is not None and root != base and base in root.parents and \
                        spec.patterns[result.index].match_file(root.relative_to(base).as_posix() + "/"):
                    continue
                return bool(result.include)
        return False


def _read_spec(path: Path):
    import pathspec  # only when a folder is searched
    try:
        if not path.is_file():
            return None
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError):      # a pattern pathspec cannot read: git would skip it too
        return pathspec.GitIgnoreSpec.from_lines([ln for ln in lines if _valid_pattern(ln)])


def _valid_pattern(line: str) -> bool:
    import pathspec
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
        return True
    except (ValueError, TypeError):
        return False


def _repository_root(folder: Path) -> Path | None:
    for d in (folder, *folder.parents):
        if (d / ".git").exists():
            return d
    return None


def exclude_spec(patterns: Sequence[str]):
    """--exclude PATTERN...: gitignore-style patterns (None when there are none)."""
    if not patterns:
        return None
    import pathspec
    try:
        return pathspec.GitIgnoreSpec.from_lines(list(patterns))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--exclude: not a gitignore-style pattern: {e}") from None


def _excluded(spec, shown: str, rel_to_root: str | None, is_dir: bool) -> bool:
    if spec is None:
        return False
    tail = "/" if is_dir else ""
    names = [shown] + ([rel_to_root] if rel_to_root else [])
    return any(spec.match_file(n.replace(os.sep, "/").removeprefix("./") + tail) for n in names
               if not n.startswith("../") and n not in ("", "."))


def _is_environment(path: str) -> bool:
    """A virtual environment or a conda environment, whatever its name."""
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.isdir(
        os.path.join(path, "conda-meta"))


def collect(paths: Iterable[str], exclude: Sequence[str] = (), skip_non_models: bool = False) -> Found:
    """The files to check, in the order of the arguments, each folder's files sorted by
    path, each file once."""
    spec = exclude_spec(exclude)
    found = Found()
    seen: set[str] = set()

    def add(target: Target) -> None:
        key = os.path.normpath(target.path)
        if key not in seen:
            seen.add(key)
            found.targets.append(target)

    for arg in paths:
        # a folder named like a model file (model.keras/) is what the user took for one:
        # the reader says it is a folder, instead of a search that finds nothing
        if _is_folder(arg) and not arg.rstrip("/" + os.sep).lower().endswith(SUFFIXES):
            found.folders += 1
            for target in _search(arg, spec, found):
                add(target)
            continue
        if _excluded(spec, os.path.relpath(arg) if os.path.isabs(arg) else arg, None, False):
            continue
        if skip_non_models and not may_hold_model(arg):
            found.passed_over += 1
            continue
        add(Target(arg, kind_of(arg), named=not skip_non_models, size=_size(arg)))
    return found


def _is_folder(arg: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(arg).st_mode)
    except (OSError, ValueError):
        return False


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return 0


def _search(root: str, spec, found: Found) -> list[Target]:
    """A folder's files worth checking, sorted by path (depth-first, names sorted)."""
    ignores = _Ignores()
    base = Path(os.path.abspath(root))
    ignores.load_above(base)
    out: list[Target] = []
    stack = [(root, base)]
    while stack:
        folder, absolute = stack.pop()
        ignores.load(absolute)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            found.unreadable.append((folder, f"cannot read folder '{visible(folder)}': "
                                             f"{e.strerror or type(e).__name__}"))
            continue
        subfolders = []
        for entry in entries:
            shown = os.path.normpath(os.path.join(folder, entry.name))
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if entry.name.startswith(".") or not (is_dir or is_file):
                continue                      # hidden, a symbolic link, a FIFO, a device
            rel = os.path.relpath(shown, root)
            if _excluded(spec, shown, rel, is_dir) or ignores.ignored(absolute / entry.name, is_dir, base):
                continue
            if is_dir:
                if entry.name in EXCLUDED_DIRS or entry.name.endswith(".egg-info") \
                        or _is_environment(entry.path):
                    continue
                subfolders.append((shown, absolute / entry.name))
            elif entry.name.lower().endswith(SUFFIXES):
                if may_hold_model(shown):
                    out.append(Target(shown, kind_of(shown), named=False, size=_entry_size(entry)))
                else:
                    found.passed_over += 1
        # depth first, in name order: the folder's files and subfolders interleave as sorted paths
        stack.extend(reversed(subfolders))
    return sorted(out, key=lambda t: _sort_key(t.path))


def _entry_size(entry: os.DirEntry) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return 0


def _sort_key(path: str) -> tuple[str, ...]:
    """Sort by path components, so that 'a/b.py' comes before 'a.b/c.py' and 'a-b.py'."""
    return tuple(Path(path).parts)
