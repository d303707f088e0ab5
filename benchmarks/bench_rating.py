"""Benchmark of the rating layer: vote latency, consensus + agreement over a study, proposals.

Pure (no viewer)::

    .venv/bin/python benchmarks/bench_rating.py

Prints each figure next to yardsticks measured in the same run (one fsync'd 1 kB atomic write for the
vote; one complex 3-D FFT of the proposal grid), so numbers from a loaded machine can be compared.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from napari_qsm_ms.io.atomic import atomic_write_text
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.rating.agreement import write_agreement
from napari_qsm_ms.rating.consensus import run_consensus
from napari_qsm_ms.rating.proposals import propose_candidates
from napari_qsm_ms.rating.votes import VOTE_CLASSES, record_vote
from _common import timeit  # benchmarks/ is on sys.path when run as a script

N_SUBJECTS, N_RATERS, N_LESIONS = 10, 3, 30
PROPOSAL_SHAPE = (384, 384, 90)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rating-"))
    study = StudyFiles.at(tmp / "study")
    for s in range(1, N_SUBJECTS + 1):
        (study.root / f"sub-{s:02d}" / "anat").mkdir(parents=True)
    subject = study.subject("01")
    rng = np.random.default_rng(0)

    yard_write = timeit(lambda: atomic_write_text(tmp / "yard.txt", "x" * 1024), repeat=20)
    counter = iter(range(10**6))
    vote_t = timeit(lambda: record_vote(subject, "bench", 1 + next(counter) % N_LESIONS, "wm", comment="c"), repeat=40)
    print(f"vote (rewrite of a {N_LESIONS}-row votes file, atomic): {1e3 * vote_t:.1f} ms "
          f"(yardstick fsync'd 1 kB atomic write {1e3 * yard_write:.1f} ms, ratio {vote_t / yard_write:.1f})")

    t0 = time.perf_counter()
    for sub in study.subjects():
        truth = rng.integers(0, 4, N_LESIONS)
        for r in range(N_RATERS):
            votes = np.where(rng.random(N_LESIONS) < 0.75, truth, rng.integers(0, 4, N_LESIONS))
            for lid, v in enumerate(votes, start=1):
                record_vote(sub, f"r{r}", lid, VOTE_CLASSES[v])
    fill = time.perf_counter() - t0
    print(f"filling {N_SUBJECTS} subjects x {N_RATERS} raters x {N_LESIONS} votes: {fill:.1f} s "
          f"({1e3 * fill / (N_SUBJECTS * N_RATERS * N_LESIONS):.1f} ms per vote)")
    cons_t = timeit(lambda: [run_consensus(s) for s in study.subjects()], repeat=3)
    agr_t = timeit(lambda: write_agreement(study), repeat=3)
    print(f"consensus of {N_SUBJECTS} subjects: {cons_t:.2f} s; agreement.tsv over the study: {agr_t:.2f} s")

    shape = PROPOSAL_SHAPE
    brain = np.zeros(shape, bool)
    brain[40:-40, 40:-40, 10:-10] = True
    tissue = np.where(brain, 3, 0).astype(np.uint8)
    imgs = [rng.normal(m, 5, shape).astype(np.float32) for m in (100, 200, 300)]
    for _ in range(60):
        c = [int(rng.integers(60, n - 60)) if n > 120 else int(rng.integers(15, n - 15)) for n in shape]
        sl = tuple(slice(ci - 3, ci + 3) for ci in c)
        imgs[0][sl] += 40
        imgs[1][sl] += 80
        imgs[2][sl] -= 80
    arr = rng.normal(size=shape).astype(np.complex64)
    fft_t = timeit(lambda: np.fft.fftn(arr), repeat=3)
    prop_t = timeit(lambda: propose_candidates(*imgs, brain, (0.47, 0.47, 1.5), tissue=tissue), repeat=3)
    n = int(propose_candidates(*imgs, brain, (0.47, 0.47, 1.5), tissue=tissue).max())
    print(f"proposals on {shape} ({n} components found of 60 planted): {prop_t:.2f} s "
          f"(yardstick complex FFT {fft_t:.2f} s, ratio {prop_t / fft_t:.1f})")


if __name__ == "__main__":
    main()
