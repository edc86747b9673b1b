"""Numba's on-disk cache for what UMAP compiles, so a new process does not compile it again.

umap-learn compiles most of its functions with a plain ``numba.njit``, without
``cache=True``: every fresh process (each ``clustergrid run``, each spawned worker) spent
about 10 s compiling before its first fit, which took under a second, so the report's
map dominated small grids. Numba can switch a compiled function's disk cache on after the
fact; its cache is keyed on the function's source file (path and modification time) and
argument types, so upgrading umap-learn or passing new types compiles afresh rather
than loading stale code. The files go where numba puts those of ``cache=True``
functions: ``__pycache__`` beside the library, or ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import sys

#: top-level packages whose compiled functions are cached (pynndescent is UMAP's
#: nearest-neighbour search; most of its functions already ask for the cache)
PACKAGES = ("umap", "pynndescent")

_enabled: set[str] = set()


def cache_compiled_functions(packages: tuple[str, ...] = PACKAGES) -> int:
    """Turn on the disk cache of every numba function of ``packages`` imported so far;
    returns how many were switched on. Call it after importing them, before any fit."""
    from numba.core.dispatcher import Dispatcher

    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name in _enabled or name.split(".")[0] not in packages:
            continue
        _enabled.add(name)
        for value in list(vars(module).values()):
            # A NullCache means "compiled per process"; leave functions already cached.
            if (isinstance(value, Dispatcher) and type(value._cache).__name__ == "NullCache"
                    and value.py_func.__module__ == name):
                value.enable_caching()
                switched += 1
    return switched

