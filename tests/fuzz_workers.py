"""Running fuzz cases in worker processes (tests/test_fuzz_files.py, test_fuzz_scripts.py).

A worker (the test file run as `python FILE WORKER cases.json results.jsonl`) runs a JSON
list of cases and appends a line `{"start": id}` before each case and the case's result
(with its "id") after it. A worker that dies, or stops writing (stuck in C code, where
SIGALRM cannot reach), is killed and a new one restarts after the case it was on; that
case's result is what `crashed(id, status)` makes of it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def memory_limiter(limit: int) -> Callable[[], None]:
    """A preexec_fn capping the worker's address space (and leaving no core files)."""
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return limit_memory


def _supervise(script: str, cases_path: Path, results_path: Path, workdir: Path, err_path: Path,
               env: dict, memory_limit: int, stall_seconds: float) -> str:
    """Run one worker to its end (or kill it when its results stop growing for
    `stall_seconds`); how it ended, with the tail of its stderr."""
    with open(err_path, "w+") as err:
        proc = subprocess.Popen([sys.executable, script, "WORKER", str(cases_path), str(results_path)],
                                cwd=workdir, env=env, preexec_fn=memory_limiter(memory_limit),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        last, since = -1, time.monotonic()
        while proc.poll() is None:
            time.sleep(0.05)
            size = results_path.stat().st_size if results_path.exists() else 0
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                proc.kill()
                proc.wait()
                break
        err.seek(0)
        if proc.returncode is not None and proc.returncode >= 0:
            return f"exit {proc.returncode}: {err.read()[-1500:]}"
        return f"killed (signal {-(proc.returncode or 9)})"


def run_rounds(script: str, cases: list[dict], workdir: Path, tag: str, env: dict, *,
               memory_limit: int, stall_seconds: float, max_rounds: int,
               crashed: Callable[[str, str], dict]) -> dict[str, dict]:
    """Every case's result, by id: workers started one after another until all ran."""
    results: dict[str, dict] = {}
    todo = list(cases)
    rounds = 0
    while todo and rounds < max_rounds:
        rounds += 1
        cases_path = workdir / f"{tag}cases{rounds}.json"
        results_path = workdir / f"{tag}results{rounds}.jsonl"
        cases_path.write_text(json.dumps(todo))
        status = _supervise(script, cases_path, results_path, workdir,
                            workdir / f"{tag}worker{rounds}.err", env, memory_limit, stall_seconds)
        started = None
        if results_path.exists():
            for line in results_path.read_text().splitlines():
                try:
                    r = json.loads(line)
                except ValueError:           # the last line of a killed worker
                    continue
                if "start" in r:
                    started = r["start"]
                else:
                    results[r["id"]] = r
                    started = None
        if started is not None:
            results[started] = crashed(started, status)
        elif not any(c["id"] in results for c in todo):
            raise RuntimeError(f"the fuzz worker did not start: {status}")
        todo = [c for c in todo if c["id"] not in results]
    return results
