"""Measurements: what intern's machinery costs and what it gains, each as an ``intern bench ...`` command.

Here "bench" means one thing, a measurement (seconds per step, tokens/s, a score against a plain script
with the same budget); an evaluation task that checkpoints are scored on is a ``Benchmark``
(``intern/evals/``). None of this runs in a post-training run, and none of it is a test: the figures
go to docs/benchmarks.md with the machine and the date.

- :mod:`intern.bench.cli`: ``bench_app``, the typer sub-app ``intern.cli`` mounts as ``intern bench``
  (``train``, ``eval``, ``gpu``, ``outcome``, ``gate``, ``grpo``, ``gsm8k-data``, ``brain``, ``lineage``, ``zero``);
- one module per measurement (``outcome``, ``plain``: the hand-written TRL script it runs as
  ``python -m intern.bench.plain plain``, ``eval``, ``gpu``, ``grpo``, ``brain``, ``gate``, ``lineage``,
  ``zero``, ``cpu``: who used the CPUs, ``data``: GSM8K files) and ``common`` (their shared options and helpers).
"""
