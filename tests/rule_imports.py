"""What a rule's job can import, read from the code with ast (nothing is imported): the rule's script and, through
the library, every function the script can reach. Used by tests/test_envs.py to check each rule's conda env.

The unit is a function (or class, or a module's top-level code): an import inside a function runs when the
function is called, so a script reaches a function's imports only when it refers to that function (by name, or
as an attribute of a module it imported). A module's top-level code runs on import. Not counted: imports in a
``try`` whose handler catches ImportError (optional), under ``if TYPE_CHECKING`` (annotations), or under a
test of ``sys.modules`` (only when someone else imported it already). ``livaebench.methods`` imports every
method module (a loop over the package); the function a method registers as its ``run`` is reached only by
the train job of that method (the registry calls it by the method's name).
"""
from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO

LIB = REPO / "workflow" / "lib"
PACKAGE = "livaebench"
METHODS_PACKAGE = "livaebench.methods"
NOT_METHOD_MODULES = ("registry", "engine", "__main__")  # what livaebench.methods does not import in its loop


def _module_files() -> dict[str, Path]:
    modules = {}
    for path in (LIB / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _optional_try(node: ast.Try) -> bool:
    return any(h.type is not None and any(n in ast.unparse(h.type) for n in ("ImportError", "ModuleNotFoundError"))
               for h in node.handlers)


def _is_register_call(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register"


def _register_run_args(node: ast.Call) -> list[ast.AST]:
    """The `run` argument of a register(...) call (third positional or keyword)."""
    return node.args[2:3] + [k.value for k in node.keywords if k.arg == "run"]


@dataclass
class Unit:
    """One function, class or module body: the imports it runs and the names it refers to."""
    imports: list[tuple[str, str | None]] = field(default_factory=list)  # (module, name imported from it)
    names: set[str] = field(default_factory=set)
    attributes: set[tuple[str, str]] = field(default_factory=set)  # (local name, attribute)


class ModuleIndex:
    """The units of one module: '' for its top-level code, qualified names ('f', 'C', 'f.<locals>.g') else."""

    def __init__(self, name: str, path: Path, script: bool = False):
        self.name, self.script = name, script
        self.package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.tree = ast.parse(path.read_text())
        self.units: dict[str, Unit] = {}
        self.bindings: dict[str, tuple[str, str | None]] = {}  # local name -> (module, name) it was imported as
        self.register_calls: dict[str, ast.Call] = {}  # method name -> its register(...) call (literal names)
        self._collect("", self.tree.body)

    def _resolve(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module
        base = self.package
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        return f"{base}.{node.module}" if node.module else base

    def _collect(self, qualname: str, body: list[ast.AST]) -> None:
        unit = self.units.setdefault(qualname, Unit())
        prefix = f"{qualname}.<locals>." if qualname else ""

        def visit(node, optional: bool):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not self.script:
                self._collect(prefix + node.name, node.body)
                for deco in node.decorator_list:
                    visit(deco, optional)
                return
            if isinstance(node, ast.ClassDef) and not self.script:
                child = prefix + node.name
                self._collect(child, node.body)  # a class counts whole: its methods with it
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._collect_into(child, sub.body)
                return
            if isinstance(node, ast.If) and ("TYPE_CHECKING" in ast.unparse(node.test)
                                              or "sys.modules" in ast.unparse(node.test)):
                for sub in node.orelse:
                    visit(sub, optional)
                return
            if isinstance(node, ast.Try) and _optional_try(node):
                for sub in node.body:
                    visit(sub, True)
                for sub in [*node.handlers, *node.orelse, *node.finalbody]:
                    visit(sub, optional)
                return
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not optional:
                        unit.imports.append((alias.name, None))
                    self.bindings[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0], None)
                return
            if isinstance(node, ast.ImportFrom):
                module = self._resolve(node)
                for alias in node.names:
                    if not optional:
                        unit.imports.append((module, alias.name))
                    self.bindings[alias.asname or alias.name] = (module, alias.name)
                return
            if _is_register_call(node) and self.name.startswith(METHODS_PACKAGE + "."):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant):
                    self.register_calls[first.value] = node
                skipped = _register_run_args(node)
                for sub in ast.iter_child_nodes(node):
                    if sub not in skipped:
                        visit(sub, optional)
                return
            if (isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "import_module")
                    and node.args and isinstance(node.args[0], ast.Constant) and not optional):
                unit.imports.append((node.args[0].value, None))  # a module looked up by name when the code runs
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                unit.names.add(node.id)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                unit.attributes.add((node.value.id, node.attr))
            for sub in ast.iter_child_nodes(node):
                visit(sub, optional)

        for stmt in body:
            visit(stmt, False)

    def _collect_into(self, qualname: str, body: list[ast.AST]) -> None:
        """Add a class method's body to its class's unit."""
        saved = self.units[qualname]
        tmp = f"{qualname}.__method__"
        self._collect(tmp, body)
        extra = self.units.pop(tmp)
        saved.imports += extra.imports
        saved.names |= extra.names
        saved.attributes |= extra.attributes

    def local_unit(self, qualname_context: str, name: str) -> str | None:
        """The unit a name refers to from inside unit `qualname_context`: a nested def, else a top-level one."""
        scope = qualname_context
        while scope:
            candidate = f"{scope}.<locals>.{name}"
            if candidate in self.units:
                return candidate
            scope = scope.rpartition(".<locals>.")[0] if ".<locals>." in scope else ""
        return name if name in self.units and name else None


@functools.cache
def _index(module: str) -> ModuleIndex:
    return ModuleIndex(module, MODULES[module])


class Reach:
    """Walks from a script (or a method's run) through the library; collects the top-level names of
    every other package imported on the way, with the units that import each."""

    def __init__(self):
        self.indexes: dict[str, ModuleIndex] = {}
        self.seen: set[tuple[str, str]] = set()
        self.packages: dict[str, set[str]] = {}  # top-level import name -> {"module:unit", ...}

    def index(self, module: str) -> ModuleIndex:
        if module not in self.indexes:
            self.indexes[module] = _index(module)
        return self.indexes[module]

    def script(self, path: Path) -> "Reach":
        idx = ModuleIndex("__main__", path, script=True)
        self.indexes[f"script:{path.name}"] = idx
        self._visit_unit(idx, "")
        return self

    def method_run(self, method) -> "Reach":
        """Everything the registered `run` of a method can reach (its function, or what its register(...) call
        passes as run: a lambda, a factory's product)."""
        module = method.run.__module__
        idx = self.index(module)
        self.reach_module(module)
        if method.run.__qualname__ in idx.units:
            self.reach(module, method.run.__qualname__)
        call = idx.register_calls.get(method.name)
        if call is not None:
            unit = Unit()
            for arg in _register_run_args(call):
                for sub in ast.walk(arg):
                    if isinstance(sub, ast.Name):
                        unit.names.add(sub.id)
                    if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                        unit.attributes.add((sub.value.id, sub.attr))
            self._follow(idx, "", unit)
        return self

    def reach_module(self, module: str) -> None:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            self.reach(".".join(parts[:i]), "")

    def reach(self, module: str, qualname: str) -> None:
        if (module, qualname) in self.seen or module not in MODULES:
            return
        self.seen.add((module, qualname))
        if qualname == "":
            self.reach_module(module.rpartition(".")[0]) if "." in module else None
            if module == METHODS_PACKAGE:
                for other in MODULES:
                    head, _, tail = other.rpartition(".")
                    if head == METHODS_PACKAGE and tail not in NOT_METHOD_MODULES:
                        self.reach(other, "")
        else:
            self.reach(module, "")
        idx = self.index(module)
        if qualname in idx.units:
            self._visit_unit(idx, qualname)

    def _target(self, module: str, name: str | None, use: bool = True) -> None:
        """`name` of `module` (None: the module itself): imported (use=False: the module's top-level code runs,
        and a submodule's of that name) or referred to (use=True: the function or class runs too)."""
        if module.split(".")[0] != PACKAGE:
            return
        while module and module not in MODULES:  # `import pkg.mod.attr`: the nearest module
            module = module.rpartition(".")[0]
        if not module:
            return
        self.reach_module(module)
        if name is None:
            return
        if f"{module}.{name}" in MODULES:
            self.reach_module(f"{module}.{name}")
            return
        if not use:
            return
        idx = self.index(module)
        if name in idx.units:
            self.reach(module, name)
        elif name in idx.bindings:
            self._target(*idx.bindings[name])

    def _visit_unit(self, idx: ModuleIndex, qualname: str) -> None:
        unit = idx.units[qualname]
        where = f"{idx.name}:{qualname or '<module>'}"
        for module, name in unit.imports:
            top = module.split(".")[0]
            if top == PACKAGE:
                self._target(module, name, use=False)
            elif top not in sys.stdlib_module_names and top != "__future__":
                self.packages.setdefault(top, set()).add(where)
        self._follow(idx, qualname, unit)

    def _follow(self, idx: ModuleIndex, qualname: str, unit: Unit) -> None:
        for name in unit.names:
            local = idx.local_unit(qualname, name)
            if local is not None and not idx.script:
                self.reach(idx.name, local)
            elif name in idx.bindings:
                self._target(*idx.bindings[name])
        for base, attr in unit.attributes:
            if base in idx.bindings:
                module, name = idx.bindings[base]
                target = f"{module}.{name}" if name else module
                if target in MODULES:
                    self._target(target, attr)
