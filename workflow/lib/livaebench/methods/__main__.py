"""The method registry on the command line (the names an error about an unknown method or parameter points to).

    python -m livaebench.methods              # every method: name, family, modalities, description
    python -m livaebench.methods livae scvi   # each one's parameters with their defaults
"""
from __future__ import annotations

import sys

from ..errors import InputError
from . import all_methods, get_method


def main(argv: list[str]) -> int:
    if not argv:
        for name, method in all_methods().items():
            print(f"{name}\t{method.family}\t{'/'.join(method.modalities)}\t{method.description}")
        return 0
    for name in argv:
        try:
            method = get_method(name)
        except InputError as err:
            print(err, file=sys.stderr)
            return 1
        print(f"{name} ({method.family})")
        for key, value in method.defaults.items():
            print(f"  {key}: {value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
