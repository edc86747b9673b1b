"""Conformance checks for plugin components, to run in a plugin's own test suite.

Like scikit-learn's ``check_estimator``: each check feeds a component small inputs and
fails with a ``ContractError`` naming the component and the rule it broke, so a plugin
author learns what the runner relies on before a grid trips over it::

    from clustergrid.testing import check_component

    def test_brightness_follows_the_contract():
        check_component(Brightness)                    # dispatches on Brightness.kind
        check_component(Brightness, {"scale": 2.0})    # with constructor keyword arguments

What is checked, and what is deliberately not:

- Inputs are small and random but fixed (seeded), and read-only, as the runner's
  memory-mapped arrays are.
- Degenerate input (every image or point the same, three items) must give either valid
  output or a ``ValueError`` saying why; any other exception, or NaN in the output, is an
  error. A metric must not raise at all on a degenerate clustering (one cluster, all
  noise) or identical points: it returns NaN, as ``Metric`` documents.
- NaN is never fed in: the runner checks every encoder and reducer output, so reducers,
  clusterers and metrics only see finite numbers; datasets may hold NaN (``nan_fill``
  removes it), and an encoder turning it into NaN output is already an error naming it.
- The heavy-import rule imports the component's module in a fresh interpreter (after
  ``clustergrid``) and lists the modules of ``HEAVY_MODULES`` it pulled in. Define
  components in a module of their own, not in a test file that imports torch.

The checks live by concept: ``declarations`` (name, flags, parameters, memory), ``imports``,
``outputs`` (transforms, encoders, reducers, clusterers), ``datasets`` and ``metrics``,
on the inputs of ``case``; ``checks`` says which run on each kind.
"""

from clustergrid.testing.case import ContractError
from clustergrid.testing.checks import (
    CHECKS,
    check_clusterer,
    check_component,
    check_dataset,
    check_encoder,
    check_metric,
    check_names,
    check_reducer,
    check_transform,
)
from clustergrid.testing.imports import HEAVY_MODULES, check_imports

__all__ = ["CHECKS", "HEAVY_MODULES", "ContractError", "check_clusterer", "check_component",
           "check_dataset", "check_encoder", "check_imports", "check_metric", "check_names",
           "check_reducer", "check_transform"]
