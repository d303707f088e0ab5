"""A whole study in one call: every subject through its steps, then the study's steps.

:func:`run_study` is what ``qsm-ms run`` and the Study dock call. Each subject is one task
(:func:`run_subject`: its steps in order, each skipped when its record says it is up to date,
see :mod:`.record`), run in this process (``jobs=1``), in a pool of worker processes
(``jobs=N``), or on a Dask cluster (``client=`` or ``scheduler=ADDRESS``). Workers read and write
the study folder directly (a shared file system on a cluster); every output is written atomically
by the step functions and each step's record last, so a run killed at any moment leaves complete
files only, and the next run does what is missing. A subject that fails is reported on one line
and the others go on.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CancelledError, ParameterError, QSMMSError, one_line
from ..io.layout import StudyFiles, SubjectFiles
from ..progress import CancelToken, ProgressCallback, report
from .record import BLOCKED, StepState, remove_leftovers, step_state, write_record
from .steps import ALL_STEPS, STEPS, STUDY_STEPS, SUBJECT_STEPS, step_parameters

#: Event kinds sent while a run goes on.
START, PROGRESS, DONE, SKIPPED, FAILED = "start", "progress", "done", "skipped", "failed"
STUDY_TARGET = "study"
_EVENT_TOPIC = "qsm-ms-run"


@dataclass(frozen=True)
class RunOptions:
    """What every task needs to know (picklable: it travels to worker processes and Dask).

    Attributes
    ----------
    params : dict
        ``{step: {name: value}}``, full (:func:`.steps.step_parameters`).
    steps : tuple of str
        The steps to consider (``--only``); others are left alone.
    force : bool
        Run the steps even when up to date.
    threads : int or None
        Threads a task may use (registration); None: all cores.
    debug : bool
        Keep the traceback of a failure in the outcome.
    """

    params: dict
    steps: tuple[str, ...] = ALL_STEPS
    force: bool = False
    threads: int | None = None
    debug: bool = False


@dataclass(frozen=True)
class Event:
    """A report from a running task (``subject`` is a label, or ``'study'``)."""

    subject: str
    step: str
    kind: str
    fraction: float = 0.0
    message: str = ""


@dataclass
class StepOutcome:
    """What happened to one step: ``ran``, ``up to date``, ``blocked``, ``failed``, ``not run``."""

    step: str
    status: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class TaskOutcome:
    """What one task (a subject, or the study's steps) did."""

    target: str
    steps: list[StepOutcome] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    peak_rss_mb: float = 0.0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ran(self) -> list[str]:
        return [s.step for s in self.steps if s.status == "ran"]


@dataclass
class CohortResult:
    """What :func:`run_study` did: one outcome per subject, one for the study's steps."""

    subjects: list[TaskOutcome]
    study: TaskOutcome | None
    jobs: str = ""
    dashboard: str | None = None
    removed: list[Path] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """One line per failed task."""
        tasks = self.subjects + ([self.study] if self.study is not None else [])
        return [t.error for t in tasks if t.error]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """The closing line of ``qsm-ms run``."""
        ran = sum(len(t.ran) for t in self.subjects) + (len(self.study.ran) if self.study else 0)
        tasks = self.subjects + ([self.study] if self.study is not None else [])
        bad = [_subject_name(t.target) for t in tasks if not t.ok]
        n = len(self.subjects)
        text = f"qsm-ms run: {n} subject{'' if n == 1 else 's'}, {ran} step{'' if ran == 1 else 's'} run"
        return f"{text}, {len(bad)} failed: {', '.join(bad)}" if bad else f"{text}, none failed"


# ---- one task ----------------------------------------------------------------------------------

def _subject_name(label: str) -> str:
    return STUDY_TARGET if label == STUDY_TARGET else f"sub-{label}"


def run_steps(target: SubjectFiles | StudyFiles, steps: Iterable[str], options: RunOptions,
              emit: Callable[[Event], None] | None = None) -> TaskOutcome:
    """Run ``steps`` (in order) for one subject or the study; the first failure ends the task.

    A step is skipped when :func:`.record.step_state` finds it up to date (unless
    ``options.force``), or blocked when a required input is missing (that is not a failure).
    Errors become the outcome's one-line ``error`` (``sub-01 recon: file: problem``);
    :class:`~napari_qsm_ms.errors.CancelledError` and ``KeyboardInterrupt`` propagate.
    """
    label = target.label if isinstance(target, SubjectFiles) else STUDY_TARGET
    emit = emit or (lambda ev: None)
    steps = [s for s in steps if s in options.steps]
    out = TaskOutcome(label, worker=f"{socket.gethostname()}:{os.getpid()}")
    for k, name in enumerate(steps):
        params = options.params[name]
        state = step_state(target, name, params)
        if state.state == BLOCKED or (not state.needs_run and not options.force):
            out.steps.append(_skip(target, name, params, state))
            emit(Event(label, name, SKIPPED, (k + 1) / len(steps), state.line()))
            continue
        why = state.reason if state.needs_run else "forced"
        emit(Event(label, name, START, k / len(steps), f"{name}: {why}"))
        t0 = time.perf_counter()
        try:
            progress = _step_progress(emit, label, name, k, len(steps))
            summary = _run_one(target, name, params, options, progress)
        except (CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - one subject's failure must not stop the others
            _fail(out, name, exc, steps[k + 1:], time.perf_counter() - t0, options.debug)
            emit(Event(label, name, FAILED, 1.0, out.error))
            break
        seconds = time.perf_counter() - t0
        out.steps.append(StepOutcome(name, "ran", summary, seconds))
        emit(Event(label, name, DONE, (k + 1) / len(steps), f"{name} done in {seconds:.1f} s: {summary}"))
    out.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def _skip(target, name: str, params: dict, state: StepState) -> StepOutcome:
    """A step left alone; one done by its single-step command gets its record now."""
    if state.adopted:  # from now on judged by a record like any other step
        spec = STEPS[name]
        write_record(target, name, params, spec.inputs(target, params), spec.outputs(target, params),
                     seconds=0.0, summary=state.reason)
    return StepOutcome(name, "blocked" if state.state == BLOCKED else "up to date", state.reason)


def _fail(out: TaskOutcome, name: str, exc: Exception, later: list[str], seconds: float, debug: bool) -> None:
    """Record a failed step in ``out``: the one-line error, the traceback of a bug, the steps left."""
    out.error = f"{_subject_name(out.target)} {name}: {one_line(exc)}"
    if debug or not isinstance(exc, (QSMMSError, OSError)):
        out.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    out.steps.append(StepOutcome(name, "failed", one_line(exc), seconds))
    out.steps.extend(StepOutcome(s, "not run", f"{name} failed") for s in later)


def _run_one(target, name: str, params: dict, options: RunOptions, progress: ProgressCallback) -> str:
    spec = STEPS[name]
    call_params = dict(params)
    if name == "coregister" and call_params.get("threads") is None:  # the run's thread budget
        call_params["threads"] = options.threads
    t0 = time.perf_counter()
    summary = spec.call(target, call_params, progress)
    write_record(target, name, params, spec.inputs(target, params), spec.outputs(target, params),
                 seconds=time.perf_counter() - t0, summary=summary)
    return summary


def _step_progress(emit, label: str, step: str, k: int, n: int, every_s: float = 0.5) -> ProgressCallback:
    """A progress callback sending at most one event per ``every_s`` seconds."""
    last = [0.0]

    def _progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            emit(Event(label, step, PROGRESS, (k + fraction) / n, message))

    return _progress


def run_subject(study_root: str | os.PathLike, label: str, options: RunOptions,
                emit: Callable[[Event], None] | None = None) -> TaskOutcome:
    """The task of one subject: remove temporaries a killed run left in its folder, then
    :func:`run_steps` over :data:`.steps.SUBJECT_STEPS`. Runs anywhere the study folder is
    mounted (a worker process, a Dask worker)."""
    subject = StudyFiles.at(study_root).subject(label)
    remove_leftovers([subject.deriv])
    return run_steps(subject, SUBJECT_STEPS, options, emit if emit is not None else _worker_emit())


# ---- where events go inside workers ------------------------------------------------------------
_WORKER: dict = {}


def _worker_emit() -> Callable[[Event], None] | None:
    """Inside a pool worker: the queue given at start-up; inside a Dask worker: the event log."""
    queue, cancel = _WORKER.get("queue"), _WORKER.get("cancel")
    if queue is not None:
        def _put(ev: Event) -> None:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled by the user")
            queue.put(ev)

        return _put
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    return lambda ev: worker.log_event(_EVENT_TOPIC, dataclasses.asdict(ev))


def _pool_init(queue, cancel, threads: int | None) -> None:
    """Start-up of a pool worker: where to send events, the thread budget, die with the parent."""
    _WORKER.update(queue=queue, cancel=cancel)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(threads)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the run that started it is killed (no orphan writes)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


# ---- executors ---------------------------------------------------------------------------------

def _checked(emit: Callable[[Event], None], token: CancelToken | None) -> Callable[[Event], None]:
    """``emit`` raising CancelledError once ``token`` is cancelled (stops a step at its next report)."""
    def _emit(ev: Event) -> None:
        if token is not None and token.cancelled:
            raise CancelledError("cancelled by the user")
        emit(ev)

    return _emit


def _serial(root: Path, labels: list[str], options: RunOptions, emit, fail_fast: bool,
            token: CancelToken | None):
    for label in labels:
        outcome = run_subject(root, label, options, _checked(emit, token))
        yield outcome
        if fail_fast and not outcome.ok:
            return


def _collect(futures: dict, wait, token: CancelToken | None, fail_fast: bool):
    """Yield task outcomes (``futures``: future -> label) as they finish; stop on cancel or
    (``fail_fast``) a failure. A task lost with its worker (killed for memory, node gone) is that
    subject's failure, on one line."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending)
        if token is not None and token.cancelled:
            raise CancelledError("cancelled by the user")
        for fut in done:
            try:
                outcome = fut.result()
            except (CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, KilledWorker, ...
                label = futures[fut]
                outcome = TaskOutcome(label, error=f"sub-{label}: worker lost ({type(exc).__name__}: "
                                                   f"{one_line(exc)})")
            yield outcome
            if fail_fast and not outcome.ok:
                return


def _pool(root: Path, labels: list[str], options: RunOptions, emit, fail_fast: bool, jobs: int,
          token: CancelToken | None):
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    queue, cancel = ctx.Queue(), ctx.Event()
    pump = threading.Thread(target=_pump, args=(queue, emit), daemon=True)
    pump.start()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pool_init,
                               initargs=(queue, cancel, options.threads))
    try:
        futures = {pool.submit(run_subject, root, label, options): label for label in labels}
        yield from _collect(futures, lambda p: wait(p, timeout=0.2, return_when=FIRST_COMPLETED),
                            token, fail_fast)
    finally:
        cancel.set()  # running tasks stop at their next progress report
        pool.shutdown(wait=True, cancel_futures=True)
        queue.put(None)
        pump.join(timeout=5)


def _pump(queue, emit) -> None:
    while (ev := queue.get()) is not None:
        emit(ev)


def _dask(root: Path, labels: list[str], options: RunOptions, emit, fail_fast: bool, client,
          token: CancelToken | None):
    from distributed import wait

    names = {f.name for f in dataclasses.fields(Event)}

    def _on_event(item) -> None:  # (time, message); the message also carries the worker's address
        emit(Event(**{k: v for k, v in item[1].items() if k in names}))

    client.subscribe_topic(_EVENT_TOPIC, _on_event)
    stamp = f"{os.getpid()}-{time.time_ns()}"
    futures = {client.submit(run_subject, str(root), label, options, pure=False,
                             key=f"qsm-ms-run-sub-{label}-{stamp}"): label for label in labels}

    def _wait(pending):
        try:
            done = wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        return set(done), pending - set(done)

    try:
        yield from _collect(futures, _wait, token, fail_fast)
    finally:
        client.cancel([f for f in futures if not f.done()])
        client.unsubscribe_topic(_EVENT_TOPIC)


# ---- the study ---------------------------------------------------------------------------------

def check_steps(only: Iterable[str] | None) -> tuple[str, ...]:
    """The steps to consider, in run order; unknown names raise :class:`ParameterError`."""
    if not only:
        return ALL_STEPS
    unknown = [s for s in only if s not in STEPS]
    if unknown:
        raise ParameterError(f"unknown step {', '.join(unknown)} (choose from {', '.join(ALL_STEPS)})")
    return tuple(s for s in ALL_STEPS if s in set(only))


def subject_status(states: list[StepState]) -> tuple[str, str]:
    """A subject's state in one word and one line: ``done`` (every step done, edited or blocked)
    or ``out of date`` (the first step that needs to run, with its reason)."""
    todo = [s for s in states if s.needs_run]
    if todo:
        return "out of date", todo[0].line()
    blocked = [s.step for s in states if s.state == BLOCKED]
    return "done", (f"not applicable: {', '.join(blocked)}" if blocked else "")


def outcome_status(outcome: TaskOutcome) -> tuple[str, str]:
    """After a run: ``failed`` with its one-line reason, else ``done`` with what ran."""
    if not outcome.ok:  # the subject is named in its own column
        return "failed", (outcome.error or "").removeprefix(f"{_subject_name(outcome.target)} ")
    return "done", (f"ran {', '.join(outcome.ran)}" if outcome.ran else "up to date")


def plan_study(
    study_root: str | os.PathLike,
    params: dict | None = None,
    *,
    only: Iterable[str] | None = None,
    subjects: list[str] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, list[StepState]]:
    """The state of every selected step of every subject (and ``'study'``), nothing run."""
    study = StudyFiles.at(study_root)
    params = step_parameters(params)
    steps = check_steps(only)
    plan = {}
    chosen = study.subjects(subjects)
    for k, s in enumerate(chosen):
        report(progress, k / (len(chosen) + 1), f"checking sub-{s.label}")
        plan[s.label] = [step_state(s, name, params[name]) for name in SUBJECT_STEPS if name in steps]
    plan[STUDY_TARGET] = [step_state(study, name, params[name]) for name in STUDY_STEPS if name in steps]
    report(progress, 1.0, "states checked")
    return plan


def run_study(
    study_root: str | os.PathLike,
    *,
    params: dict | None = None,
    only: Iterable[str] | None = None,
    force: bool = False,
    subjects: list[str] | None = None,
    jobs: int | None = 1,
    client=None,
    scheduler: str | None = None,
    fail_fast: bool = False,
    debug: bool = False,
    on_event: Callable[[Event], None] | None = None,
    on_start: Callable[[str, str | None], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> CohortResult:
    """Every subject through its steps, then the study's steps (agreement, statistics).

    Parameters
    ----------
    study_root : path
        The study folder (docs/study_layout.md); on a cluster, at the same path on every worker.
    params : dict, optional
        ``{step: {name: value}}`` overriding the defaults of the functions the steps call.
    only : iterable of str, optional
        Steps to consider (default all: recon, coregister, consensus, rois, agreement, stats).
    force : bool
        Run the considered steps even when their records say they are up to date.
    subjects : list of str, optional
        Subject labels (default: every ``sub-*`` folder).
    jobs : int or None
        Subjects run at once on this machine: 1 runs them in this process; None chooses from the
        cores and memory (:func:`.resources.default_jobs`). Ignored with ``client``/``scheduler``.
    client : distributed.Client, optional
        Run the subjects on this Dask cluster.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to connect to.
    fail_fast : bool
        Stop at the first failing subject (default: report it, go on).
    debug : bool
        Keep tracebacks in the outcomes.
    on_event : callable, optional
        Receives every :class:`Event` (per-subject progress), from any thread.
    on_start : callable, optional
        ``on_start(how, dashboard)`` once the executor is chosen: how many jobs and why, and the
        Dask dashboard address (None without Dask).
    progress : callable, optional
        Overall ``progress(fraction, message)``; may raise CancelledError.
    cancel : CancelToken, optional
        Stops the run, as a CancelledError raised by ``progress`` does: steps stop at their next
        progress report (running Dask tasks finish their subject); the run raises CancelledError.

    Returns
    -------
    CohortResult
    """
    from .resources import available_cores, default_jobs

    study = StudyFiles.at(study_root)
    labels = [s.label for s in study.subjects(subjects)]
    if not labels:
        raise ParameterError(f"{study.root}: no sub-* folders")
    if jobs is not None and jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {jobs}")
    full = step_parameters(params)
    steps = check_steps(only)
    owned_client = None
    if client is None and scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ParameterError(
                "--scheduler needs dask.distributed: pip install 'napari-qsm-ms[cluster]'") from None
        client = owned_client = Client(scheduler)
    how = ""
    if client is None and jobs is None:
        jobs, how = default_jobs(study, labels)
    threads = None if client is not None else max(1, available_cores() // (jobs or 1))
    options = RunOptions(full, steps, force, threads if (jobs or 1) > 1 else None, debug)
    cancel = cancel if cancel is not None else CancelToken()
    tracker = _Tracker(labels, on_event, progress, cancel)
    result = CohortResult([], None, how or (f"{jobs} job(s)" if client is None else "dask"))
    result.removed = remove_leftovers([study.derivatives])
    try:
        if client is not None:
            result.dashboard = getattr(client, "dashboard_link", None)
        if on_start is not None:
            on_start(result.jobs, result.dashboard)
        if client is not None:
            tasks = _dask(study.root, labels, options, tracker, fail_fast, client, cancel)
        elif jobs == 1 or len(labels) == 1:
            tasks = _serial(study.root, labels, options, tracker, fail_fast, cancel)
        else:
            tasks = _pool(study.root, labels, options, tracker, fail_fast, min(jobs, len(labels)), cancel)
        for outcome in tasks:
            result.subjects.append(outcome)
            tracker.finished(outcome)
        if cancel.cancelled:
            raise CancelledError("cancelled by the user")
        if not (fail_fast and result.failures):
            result.study = run_steps(study, STUDY_STEPS, options, _checked(tracker, cancel))
            tracker.finished(result.study)
    finally:
        if owned_client is not None:
            owned_client.close()
    order = {lab: i for i, lab in enumerate(labels)}
    result.subjects.sort(key=lambda t: order.get(t.target, 0))
    return result


class _Tracker:
    """Relays events to ``on_event`` and turns them into overall progress (thread-safe)."""

    def __init__(self, labels: list[str], on_event, progress, token: CancelToken) -> None:
        self.fraction = dict.fromkeys([*labels, STUDY_TARGET], 0.0)
        self.on_event = on_event
        self.progress = progress
        self.token = token
        self.lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self.fraction[ev.subject] = max(self.fraction.get(ev.subject, 0.0), ev.fraction)
            overall = sum(self.fraction.values()) / len(self.fraction)
        if self.on_event is not None:
            self.on_event(ev)
        try:
            report(self.progress, overall, f"{_subject_name(ev.subject)} {ev.step}: {ev.message}")
        except CancelledError:  # a GUI's Cancel: the executors stop at their next check
            self.token.cancel()

    def finished(self, outcome: TaskOutcome) -> None:
        self(Event(outcome.target, "", DONE if outcome.ok else FAILED, 1.0, outcome.error or "finished"))
