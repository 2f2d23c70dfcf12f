"""The script's own modules: files next to it (`from model import unet`), packages
(`from models.unet import unet`, `import pkg.sub`) and relative imports inside a
package (`from .layers import ConvBlock`), read and parsed once per check and run by
the evaluator like the script itself (never imported, never executed).

Bounded: only the script's folder and its package's, at most MAX_MODULES files and
MAX_BYTES in all, each a regular file read with cnnc's size limits. A module that
cannot be read or parsed is unknown, with one warning at the import.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cnnc.frontends.python.scope import Scope
from cnnc.frontends.python.values import ModuleVal, Unknown
from cnnc.support.diagnostics import Reporter, UsageError

MAX_MODULES = 64
MAX_BYTES = 16 * 1024 * 1024
MAX_IMPORT_DEPTH = 40


@dataclass
class ModuleInfo:
    """Where a module lives: its folder, its dotted name, whether it is a package."""

    folder: Path | None
    dotted: str
    package: bool = False
    names: frozenset | None = None        # every name the module binds somewhere


@dataclass
class ModuleCode:
    info: ModuleInfo
    body: list
    path: Path


@dataclass
class Project:
    """The folder a script lives in, and the modules of it read so far."""

    script: Path | None
    smap: object
    rep: Reporter
    main_info: ModuleInfo = field(init=False)
    codes: dict = field(default_factory=dict)       # resolved path -> ModuleCode | str (why not)
    bytes_read: int = 0
    search: list = field(default_factory=list)
    found: dict = field(default_factory=dict)       # (path, level, folder) -> files, or None

    def __post_init__(self):
        folder = self.script.parent if self.script is not None else None
        self.main_info = ModuleInfo(folder, "__main__")
        if folder is not None:
            top = folder
            for _ in range(8):               # the top of the package the script is in
                if not (top / "__init__.py").is_file() or top.parent == top:
                    break
                top = top.parent
            self.search = [folder] + ([top] if top != folder else [])

    def bound_names(self, info: ModuleInfo | None) -> frozenset:
        """Every name a module binds anywhere (assignments, defs, imports, parameters):
        a name outside them is not the script's (a snippet's missing import)."""
        info = info or self.main_info
        if info.names is None:
            info.names = _bound_names(self._body_of(info))
        return info.names

    def _body_of(self, info: ModuleInfo) -> list:
        if info is self.main_info:
            return [s for chunk in self.smap.main.chunks for s in chunk.body]
        for code in self.codes.values():
            if isinstance(code, ModuleCode) and code.info is info:
                return code.body
        return []

    # --- finding a module -----------------------------------------------------------

    def locate(self, path: tuple[str, ...], level: int, info: ModuleInfo | None) -> list[Path] | None:
        """The files of `path`'s packages and module, outermost first (a package's
        __init__.py, or a folder without one), or None when it is not the script's.
        Looked up on disk once per check (every run asks again)."""
        if self.script is None:
            return None
        info = info or self.main_info
        key = (path, level, info.folder)
        if key not in self.found:
            self.found[key] = self._locate(path, level, info)
        return self.found[key]

    def _locate(self, path: tuple[str, ...], level: int, info: ModuleInfo) -> list[Path] | None:
        if level:
            base = info.folder
            for _ in range(level - 1):
                if base is None or base.parent == base:
                    return None
                base = base.parent
            roots = [base] if base is not None and self._inside(base) else []
        else:
            roots = self.search
        for root in roots:
            found = self._walk(root, path)
            if found is not None:
                return found
        return None

    def _inside(self, folder: Path) -> bool:
        return any(folder == r or r in folder.parents or folder in r.parents for r in self.search)

    def _walk(self, root: Path, path: tuple[str, ...]) -> list[Path] | None:
        files: list[Path] = []
        cur = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if not part.isidentifier():
                return None
            pkg = cur / part
            if pkg.is_dir() and ((pkg / "__init__.py").is_file() or not (cur / f"{part}.py").is_file()):
                files.append(pkg / "__init__.py" if (pkg / "__init__.py").is_file() else pkg)
                cur = pkg
                continue
            if (cur / f"{part}.py").is_file() and last:
                files.append(cur / f"{part}.py")
                return files
            return None if not files or not last else None
        return files or None

    def code(self, file: Path, dotted: str, rep: Reporter, where) -> ModuleCode | str:
        """The module's parsed code (read once), or why it cannot be read."""
        key = str(file)
        if key in self.codes:
            return self.codes[key]
        from cnnc.frontends.python.source import decode, read_python
        if file.is_dir():
            info = ModuleInfo(file, dotted, package=True)
            self.codes[key] = ModuleCode(info, [], file)
            return self.codes[key]
        if len(self.codes) >= MAX_MODULES:
            self.codes[key] = f"the script imports more than {MAX_MODULES} modules of its own"
            return self.codes[key]
        from cnnc.support.files import read_bytes
        try:
            data = read_bytes(file, "module", limit=MAX_BYTES)
            self.bytes_read += len(data)
            if self.bytes_read > MAX_BYTES:
                raise UsageError(f"the script's modules are more than {MAX_BYTES >> 20} MiB in all")
            text = decode(data, str(file))
        except (UsageError, OSError) as e:
            self.codes[key] = getattr(e, "message", None) or str(e)
            return self.codes[key]
        own = Reporter(str(file))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = read_python(str(file), text, own)
        if own.has_errors or not src.chunks:
            first = next((d for d in own.diagnostics if d.is_error), None)
            self.codes[key] = (f"{file.name} is not Python cnnc can read" +
                               (f" (line {first.span.line}: {first.message})" if first and first.span else ""))
            return self.codes[key]
        shown = self._shown(file)
        base = self.smap.add(src, shown)
        body = src.chunks[0].body
        for stmt in body:
            ast.increment_lineno(stmt, base)
        info = ModuleInfo(file.parent, dotted, package=file.name == "__init__.py")
        self.codes[key] = ModuleCode(info, body, file)
        return self.codes[key]

    def _shown(self, file: Path) -> str:
        if self.script is not None:
            try:
                return str(file.relative_to(self.script.parent))
            except ValueError:
                pass
        return str(file)

    # --- importing (for the evaluator of one run) ----------------------------------

    def import_value(self, ev, path: tuple[str, ...], level: int, node, scope: Scope | None):
        """The value `from <path[:-1]> import <path[-1]>` or `import <path>` gives, when
        `path` is the script's own; None when it is not (a library)."""
        info = scope.module.info if scope is not None else None
        files = self.locate(path, level, info)
        attr = None
        if files is None and len(path) > 1:
            files = self.locate(path[:-1], level, info)      # `from pkg.mod import name`
            attr = path[-1]
        if files is None:
            return None
        prefix = _dotted(info, level) if level else ""
        mod = None
        for i, f in enumerate(files):
            dotted = ".".join(x for x in (prefix, *path[:i + 1]) if x)
            parent = mod
            mod = self.run_module(ev, f, dotted, node)
            if isinstance(mod, Unknown):
                return mod
            if parent is not None:
                parent.scope.vars.setdefault(path[i], mod)
        if attr is None:
            return mod
        if attr in mod.scope.vars:
            return mod.scope.vars[attr]
        return Unknown(f"'{attr}' is not defined in {mod.name}", ev.span(node), name=attr)

    def run_module(self, ev, file: Path, dotted: str, node):
        """Run a module of the script once per run (its values, as Python's import)."""
        key = str(file)
        if key in ev.modules:
            return ev.modules[key]
        code = self.code(file, dotted, self.rep, ev)
        if isinstance(code, str):
            ev.note_once(("module", key), f"cnnc cannot read the module imported here: {code}",
                         ev.span(node))
            return Unknown(f"the module {dotted} cannot be read", ev.span(node), name=dotted)
        scope = Scope()
        scope.vars["__name__"] = dotted
        scope.info = code.info
        mod = ModuleVal(dotted, scope)
        ev.modules[key] = mod
        if ev.import_depth >= MAX_IMPORT_DEPTH:
            ev.note_once(("deep", key), f"cnnc follows imports {MAX_IMPORT_DEPTH} modules deep; "
                         f"{dotted} is not read", ev.span(node))
            return Unknown(f"the module {dotted} is imported more than {MAX_IMPORT_DEPTH} modules deep",
                           ev.span(node), name=dotted)
        ev.import_depth += 1
        try:
            ev.run_module_body(code.body, scope)
        finally:
            ev.import_depth -= 1
        return mod


def _dotted(info: ModuleInfo | None, level: int) -> str:
    if info is None or info.dotted == "__main__":
        return ""
    parts = info.dotted.split(".")
    keep = len(parts) - level + (1 if info.package else 0)
    return ".".join(parts[:max(keep, 0)])


def _bound_names(body: list) -> frozenset:
    names: set[str] = set()
    stack = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.alias):
            names.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            names.update(n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
        elif type(n).__name__ in ("MatchAs", "MatchStar") and getattr(n, "name", None):
            names.add(n.name)
        stack.extend(ast.iter_child_nodes(n))
    return frozenset(names)
