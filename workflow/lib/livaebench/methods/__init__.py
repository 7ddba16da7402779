"""Method registry and every registered method.

Importing this package imports each module in it, so each module's ``register(...)`` calls run. It
must stay cheap (the Snakefile imports it while parsing): method modules import heavy packages only
inside the functions that fit.
"""
import importlib
import pkgutil

from .registry import (ARTIFACT_FILES, Check, Deviation, FitContext, Method, Origin, Resources, all_methods,
                       check_dataset_method_params, check_method_params, fit_method, get_method, method_overrides,
                       methods_of_family, register)

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("registry", "engine", "__main__"):  # __main__: the command-line listing
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ARTIFACT_FILES", "Check", "Deviation", "FitContext", "Method", "Origin", "Resources", "all_methods", "check_dataset_method_params",
           "check_method_params", "fit_method", "get_method", "method_overrides", "methods_of_family", "register"]
