"""The heavy-import rule: discovery imports every plugin module, in the driver and in each
worker, so a module importing torch or umap at the top slows every command down.

Each module is imported in a fresh interpreter, after ``clustergrid``, so that only what
the plugin itself adds is charged to it; one interpreter probes many modules at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from clustergrid.components import Component
from clustergrid.testing.case import IMAGE_SHAPE, N_SAMPLES, Case

#: Modules that take long to import: a plugin imports them inside its methods, so that
#: discovery (``clustergrid plugins``, every worker's start) stays fast.
HEAVY_MODULES = ("torch", "torchvision", "tensorflow", "jax", "transformers", "timm", "umap",
                 "pynndescent", "numba", "hdbscan", "sklearn", "skimage", "astropy", "mlflow",
                 "pandas")

_IMPORT_PROBE = r"""
import importlib, json, os, sys
sys.path[:], heavy, modules = json.loads(sys.stdin.read())
import clustergrid  # every plugin imports it: what it imports is not the plugin's doing
baseline = set(sys.modules)
for module in modules:
    # A forked child per module starts from the same baseline; without fork, modules are
    # imported in turn and a heavy import is charged to the first that makes it.
    forked = hasattr(os, "fork")
    if forked and os.fork():
        os.wait()
        continue
    try:
        importlib.import_module(module)
        new = {name.split(".")[0] for name in set(sys.modules) - baseline}
        print(json.dumps([module, sorted(new.intersection(heavy)), None]), flush=True)
    except BaseException as exc:
        print(json.dumps([module, [], f"{type(exc).__name__}: {exc}"]), flush=True)
    if forked:
        os._exit(0)
"""

#: (module, sys.path) -> (heavy modules it imports, import error or None)
_imports_seen: dict[tuple[str, tuple[str, ...]], tuple[list[str], str | None]] = {}


def _probe_imports(modules: list[str]) -> dict[str, tuple[list[str], str | None]]:
    """What importing each module in a fresh interpreter pulls in, one interpreter for all."""
    path = tuple(sys.path)
    missing = sorted({m for m in modules if (m, path) not in _imports_seen})
    if missing:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True,
                              text=True, env=env, timeout=300,
                              input=json.dumps([list(path), HEAVY_MODULES, missing]))
        for line in done.stdout.splitlines():
            module, heavy, error = json.loads(line)
            _imports_seen[(module, path)] = (heavy, error)
        crashed = done.stderr.strip()[-500:] or f"the interpreter exited ({done.returncode})"
        for module in missing:  # no line: the import crashed the interpreter
            _imports_seen.setdefault((module, path), ([], crashed))
    return {m: _imports_seen[(m, path)] for m in modules}


def no_heavy_imports(case: Case) -> None:
    """Importing the component's module imports none of ``HEAVY_MODULES``: discovery
    imports every plugin module, in the driver and in each worker. It must also import
    in a fresh process at all, since workers are spawned and import it again."""
    module = case.cls.__module__
    if module == "__main__":
        return  # a script's classes cannot be imported again; nothing to check
    heavy, error = _probe_imports([module])[module]
    if error:
        raise case.fail(f"its module {module} does not import in a fresh process: {error}")
    if heavy:
        raise case.fail(f"importing its module {module} imports {', '.join(heavy)}; import "
                        "heavy libraries inside the methods that use them")


def check_imports(*classes: type[Component]) -> None:
    """The heavy-import rule (``no_heavy_imports``) for many classes at once, their modules
    probed in one fresh interpreter; ``check_component`` reuses what it found."""
    _probe_imports([cls.__module__ for cls in classes if cls.__module__ != "__main__"])
    for cls in classes:
        no_heavy_imports(Case(cls, None, IMAGE_SHAPE, N_SAMPLES))
