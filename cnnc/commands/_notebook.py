"""Where a notebook's code lines are in the .ipynb file itself.

A notebook's diagnostics name a cell and a line in it (`cell 4, line 2`); a CI system
annotates lines of the file as stored, which is JSON. This finds, for each line of each
code cell, the line of the JSON text where it is written, by walking the JSON with
positions kept (the standard library's decoder skips everything else).
"""

from __future__ import annotations

import json
import re


def notebook_lines(path: str) -> dict[tuple[int, int], int]:
    """(cell number, line in the cell) -> the line of the .ipynb file where that line of the
    cell's source is written, so that CI annotations land on the notebook's own text.
    Cells are numbered from 1 counting every cell (as the diagnostics do). Empty when the
    file is not a notebook this can follow (nbformat 3, or unreadable)."""
    try:
        with open(path, "rb") as f:
            text = f.read(64 * 2**20).decode("utf-8-sig")
        return _NotebookScan(text).lines()
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, IndexError):
        return {}


class _NotebookScan:
    """Walks a notebook's JSON text keeping positions: the "cells" list, each cell's
    "source" (a list of strings or one string); every other value is skipped whole."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str):
        self.s = text
        self.decoder = json.JSONDecoder()
        self.found: dict[tuple[int, int], int] = {}
        self._counted = (0, 1)            # (position, its line): strings come in order

    def _line_at(self, i: int) -> int:
        pos, line = self._counted
        line += self.s.count("\n", pos, i)
        self._counted = (i, line)
        return line

    def lines(self) -> dict[tuple[int, int], int]:
        self._object(self._ws(0), self._top)
        return self.found

    def _ws(self, i: int) -> int:
        return self._WS.match(self.s, i).end()

    def _string(self, i: int) -> tuple[str, int]:
        if self.s[i] != '"':
            raise ValueError("expected a string")
        return json.decoder.scanstring(self.s, i + 1)

    def _skip(self, i: int) -> int:
        return self.decoder.raw_decode(self.s, i)[1]

    def _object(self, i: int, on_key) -> int:
        if self.s[i] != "{":
            raise ValueError("expected an object")
        i = self._ws(i + 1)
        if self.s[i] == "}":
            return i + 1
        while True:
            key, i = self._string(i)
            i = self._ws(i)
            if self.s[i] != ":":
                raise ValueError("expected ':'")
            i = on_key(key, self._ws(i + 1))
            i = self._ws(i)
            if self.s[i] == "}":
                return i + 1
            if self.s[i] != ",":
                raise ValueError("expected ','")
            i = self._ws(i + 1)

    def _top(self, key: str, i: int) -> int:
        return self._cells(i) if key == "cells" else self._skip(i)

    def _cells(self, i: int) -> int:
        if self.s[i] != "[":
            return self._skip(i)
        i = self._ws(i + 1)
        number = 0
        while self.s[i] != "]":
            number += 1
            if self.s[i] == "{":
                cell: dict = {}
                i = self._object(i, lambda k, j, c=cell: self._cell_key(c, k, j))
                if cell.get("cell_type") == "code" and "source" in cell:
                    self._source(number, cell["source"])
            else:
                i = self._skip(i)
            i = self._ws(i)
            if self.s[i] == ",":
                i = self._ws(i + 1)
        return i + 1

    def _cell_key(self, cell: dict, key: str, i: int) -> int:
        """One key of a cell: its type, or its source with the position of every piece."""
        if key == "cell_type":
            cell["cell_type"], end = self.decoder.raw_decode(self.s, i)
            return end
        if key != "source":
            return self._skip(i)
        pieces = []
        if self.s[i] == "[":
            i = self._ws(i + 1)
            while self.s[i] != "]":
                start = i
                value, i = self._string(i)
                pieces.append((start, value))
                i = self._ws(i)
                if self.s[i] == ",":
                    i = self._ws(i + 1)
            end = i + 1
        else:
            start = i
            value, end = self._string(i)
            pieces.append((start, value))
        cell["source"] = pieces
        return end

    def _source(self, cell: int, pieces: list[tuple[int, str]]) -> None:
        """Record the file line of each line of a code cell's source."""
        line_in_cell = 1
        for start, value in pieces:
            file_line = self._line_at(start)
            parts = value.split("\n")
            for k, part in enumerate(parts):
                if k == len(parts) - 1 and not part and k > 0:
                    break                 # the piece ended its line: the next starts a new one
                self.found.setdefault((cell, line_in_cell + k), file_line)
            line_in_cell += len(parts) - 1
