"""The benchmark registry: names to benchmark objects, the shipped ones registered on first use.

    from intern.evals import get_benchmark          # (re-exported by the package)
    bench = get_benchmark("wordproblems")
    register(MyBenchmark())                         # a benchmark of your own

The shipped benchmarks are plain objects in their modules (`intern.evals.builtin.BUILTINS`,
`intern.evals.suite.SUITE`, `intern.evals.code_suite.CODE_SUITE`); this module registers them when
the registry is first read, so importing a benchmark module registers nothing and no module of
``intern.evals`` imports this one back.
"""

from __future__ import annotations

from intern.errors import BenchmarkError
from intern.evals.base import Benchmark

__all__ = ["get_benchmark", "list_benchmarks", "register"]

_REGISTRY: dict[str, Benchmark] = {}
_SHIPPED_LOADED: list[bool] = []  # (a list: set once, without a global statement)


def register(benchmark: Benchmark) -> None:
    """Adds a benchmark to the registry under its ``name``.

    Registering the same object twice is a no-op; registering a different object
    under a taken name is an error, so two benchmarks never silently shadow each other.

    Raises:
        BenchmarkError: If the object lacks the Benchmark interface or the name is taken.
    """
    if not isinstance(benchmark, Benchmark):
        raise BenchmarkError(
            f"cannot register {benchmark!r}: it does not implement the Benchmark protocol "
            "(needs name, kind, splits, items, prompt, target, extract, score)"
        )
    name = benchmark.name
    if not isinstance(name, str) or not name:
        raise BenchmarkError(f"cannot register {benchmark!r}: its name must be a non-empty str")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not benchmark:
        raise BenchmarkError(
            f"a benchmark named {name!r} is already registered; choose another name"
        )
    _REGISTRY[name] = benchmark


def _load_builtins() -> None:
    """Register the benchmarks that ship with intern (once; a no-op afterwards)."""
    if _SHIPPED_LOADED:
        return
    from intern.evals.builtin import BUILTINS
    from intern.evals.code_suite import CODE_SUITE
    from intern.evals.suite import SUITE

    for benchmark in (*BUILTINS, *SUITE, *CODE_SUITE):
        register(benchmark)
    _SHIPPED_LOADED.append(True)


def get_benchmark(name: str) -> Benchmark:
    """Returns the registered benchmark called ``name``.

    Raises:
        BenchmarkError: If no benchmark has that name; the message lists the known ones.
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise BenchmarkError(f"unknown benchmark {name!r}; known benchmarks: {known}") from None


def list_benchmarks() -> list[str]:
    """Returns the registered benchmark names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)
