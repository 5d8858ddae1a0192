"""Run the steps of a reproduction: each as its own ``usgan`` process, up to ``jobs`` at a
time (each with its share of the CPU threads), finished ones skipped, every command and its
output kept in OUT/logs, its wall time in OUT/steps.jsonl. Stopped by SIGTERM, it stops its
steps as Ctrl-C would (a training run saves a checkpoint first) and waits for them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from usgan.core.errors import UsganError
from usgan.core.runtime import handling

from .plan import Layout, Step


class StepFailed(UsganError):
    """A step's command failed; its log says why."""


def log_name(step: Step) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", step.id) + ".log"


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


class Children:
    """The step processes running now, so that a reproduce stopped with SIGTERM (``kill``, a
    scheduler's time limit) stops them too instead of leaving them to write on unseen."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def run(self, argv: list[str], **kwargs: Any) -> tuple[int, str]:
        """Run ``argv`` to its end; returns its exit status and stdout."""
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kwargs) as proc:
            with self._lock:
                self._procs.add(proc)
            try:
                out, _ = proc.communicate()
            finally:
                with self._lock:
                    self._procs.discard(proc)
        return proc.returncode, out

    def interrupt(self) -> None:
        """Send each running step SIGINT, as Ctrl-C in a terminal would."""
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

    @contextlib.contextmanager
    def stop_on_sigterm(self) -> Iterator[None]:
        """While inside, SIGTERM interrupts the steps, then raises KeyboardInterrupt here
        (the caller waits for the steps to finish their checkpoints)."""
        def handler(signum: int, frame: Any) -> None:
            self.interrupt()
            raise KeyboardInterrupt

        with handling(signal.SIGTERM, handler):
            yield


def run_one(step: Step, lay: Layout, threads: int, children: Children | None = None) -> str:
    """Run ``step``'s command; returns its stdout, raises `StepFailed` naming the log."""
    argv = step.argv()
    lay.logs.mkdir(parents=True, exist_ok=True)
    log = lay.logs / log_name(step)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"$ usgan {' '.join(argv)}\n")
        fh.flush()
        code, stdout = (children or Children()).run([sys.executable, "-m", "usgan", *argv],
                                                    stderr=fh, env=env)
        fh.write(stdout)
    seconds = time.perf_counter() - start
    with lay.steps.open("a") as fh:
        fh.write(json.dumps({"step": step.id, "seconds": round(seconds, 1),
                             "exit": code, "threads": threads,
                             "command": ["usgan", *argv], "at": time.strftime("%FT%T")}) + "\n")
    if code != 0:
        last = _last_line(log)
        raise StepFailed(f"step '{step.id}' failed (exit {code}): {last}; "
                         f"log: {log}; run the same command again to continue")
    if step.after is not None:
        step.after(stdout)
    return stdout


def _last_line(path: os.PathLike[str]) -> str:
    lines = [x for x in open(path).read().splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("usgan: error:")]
    return (errors or lines or ["no output"])[-1]


def run_all(steps: Sequence[Step], lay: Layout, jobs: int, echo: Callable[[str], None],
            only: Sequence[Step] | None = None) -> list[str]:
    """Run every step (of ``only``, when given) not yet done, each once its ``needs`` are
    done; returns the ids run. After a failure no new step starts; the ones running finish,
    then it is raised."""
    chosen = {s.id for s in (steps if only is None else only)}
    done = {s.id for s in steps if s.done()}
    pending = [s for s in steps if s.id in chosen and s.id not in done]
    threads, ran = threads_per_job(jobs), []
    if not pending:
        return ran
    echo(f"reproduce: {len(pending)} step(s) to run, {len(done)} done; {jobs} at a time, "
         f"{threads} thread(s) each")
    running: dict[Future[str], Step] = {}
    failure: BaseException | None = None
    children = Children()
    with ThreadPoolExecutor(max_workers=jobs) as pool, children.stop_on_sigterm():
        while pending or running:
            if failure is None:
                for step in [s for s in pending if set(s.needs) <= done][:jobs - len(running)]:
                    pending.remove(step)
                    echo(f"reproduce: start {step.id}")
                    running[pool.submit(run_one, step, lay, threads, children)] = step
            if not running:
                if failure is None and pending:
                    raise UsganError("reproduce: these steps wait on steps that are not run: "
                                     + ", ".join(f"{s.id} (needs {', '.join(s.needs)})"
                                                 for s in pending[:3])
                                     + "; run without --phase, or with their phase too")
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                step = running.pop(fut)
                if fut.exception() is not None:
                    failure = failure or fut.exception()
                    continue
                done.add(step.id)
                ran.append(step.id)
                echo(f"reproduce: done {step.id}")
    if failure is not None:
        raise failure
    return ran
