"""Method registry and every registered method.

Importing this package imports each module in it, so each module's ``register(...)`` calls run.
"""
import importlib
import pkgutil

from .registry import FitContext, Method, all_methods, fit_method, get_method, register

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FitContext", "Method", "all_methods", "fit_method", "get_method", "register"]
