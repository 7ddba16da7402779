"""pyproject's requires-python is what the lock needs: the highest Requires-Python minimum among the pinned
packages. Read from the metadata of the locked packages installed here (no network)."""
from __future__ import annotations

import importlib.util
import re
import tomllib
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import REPO

# Wheels only a CUDA install of torch pulls in: a CPU install (this test's usual home) lacks them. Their
# Requires-Python (>=3, >=3.10 on PyPI) is below the others'.
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton$)")


def _pins() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("envs_lock", REPO / "envs" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lock_pins((REPO / "envs" / "requirements.lock").read_text())


def _minimum(requires: str | None) -> Version | None:
    """The lowest Python a Requires-Python specifier admits (its largest >=/> bound), None when unbounded."""
    bounds = [Version(s.version) for s in SpecifierSet(requires or "") if s.operator in (">=", ">", "~=", "==")]
    return max(bounds, default=None)


def test_minimum_of_a_specifier():
    assert _minimum(">=3.11,<4") == Version("3.11")
    assert _minimum("!=3.14.1,>=3.11") == Version("3.11")
    assert _minimum(None) is None and _minimum("<4") is None


def test_requires_python_is_the_highest_minimum_of_the_locked_packages():
    pins = _pins()
    minimums, unchecked = {}, []
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            unchecked.append(name)
            continue
        # the installed version must be the pinned one (torch: a local build of it, e.g. 2.13.0+cpu)
        assert Version(dist.version).public == Version(version).public, \
            f"{name} {dist.version} installed, {version} locked: install with pip install -c envs/requirements.lock"
        minimums[name] = _minimum(dist.metadata.get("Requires-Python"))
    assert all(CUDA_ONLY.match(name) for name in unchecked), \
        f"locked but not installed: {sorted(n for n in unchecked if not CUDA_ONLY.match(n))}"
    assert len(minimums) >= 100

    needed = max(v for v in minimums.values() if v is not None)
    declared = _minimum(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    holders = sorted(n for n, v in minimums.items() if v == needed)
    assert declared == needed, (f"pyproject.toml requires-python admits {declared}, but the lock needs {needed} "
                                f"({', '.join(holders[:5])}, ...)")
