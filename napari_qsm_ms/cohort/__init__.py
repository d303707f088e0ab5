"""A whole study in one call (``qsm-ms run``, the Study dock): plan, step records, executors.

* :mod:`.steps`: what each step reads, writes and calls (the subcommands' own functions).
* :mod:`.record`: step records and the state of a step (done, edited, out of date, missing).
* :mod:`.run`: :func:`~.run.run_study` over subjects, here, in worker processes or on Dask.
* :mod:`.resources`: how many subjects fit on this machine at once.
"""
