"""No import cycle among medtk's modules (docs/ARCHITECTURE.md: imports only go down).

A static scan: every `.py` file under the folders pyproject's `package-dir` maps (toolkit/ -> medtk,
runtime/ -> medtk.runtime, ...) is named as setuptools names it, and each import statement becomes an
edge to the medtk module it loads (`from pkg import mod` to `pkg.mod` when that is a module).

Lazy imports (inside functions) count as much as top-level ones. A lazy import only defers *when* a
module loads, not *whether* it depends on the other: two modules that import each other cannot be read,
tested or moved apart, whichever side waits until a function runs, and a cycle hidden that way breaks
as soon as someone hoists the import. Deferring is for heavy libraries (OpenCV, pydicom, TensorFlow),
not for cycles. Imports under `if TYPE_CHECKING:` are left out: they never run.
A package's `__init__` is not counted as imported by its own submodules (Python runs it first, but
medtk's `__init__` files load their children only on demand, by name), so a package and its modules
are not reported as a cycle.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.runtime.test_layers import REPO_ROOT


def package_dirs(root: Path) -> dict[str, Path]:
    """Import name -> folder, from pyproject's `[tool.setuptools] package-dir`."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return {name: root / folder for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def module_files(dirs: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for every `.py` file under the mapped folders."""
    modules = {}
    for package, folder in dirs.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            modules[".".join((package, *parts))] = path
    return modules


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The medtk modules `name` (at `path`) imports, top-level and lazy, `TYPE_CHECKING` blocks left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                targets.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                targets.extend(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                               for alias in child.names)
            elif isinstance(child, ast.Call) and getattr(child.func, "attr", getattr(child.func, "id", "")) == "import_module":
                targets.extend(arg.value for arg in child.args[:1] if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    found = set()
    for target in targets:
        while target and target not in modules:  # `import medtk.runtime.imaging.probe`-like: the module part
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_cycles(root: Path) -> list[list[str]]:
    """Every group of modules that import each other (strongly connected components larger than one)."""
    modules = module_files(package_dirs(root))
    graph = {name: imported(name, path, modules) for name, path in modules.items()}
    order, low, stack, cycles = {}, {}, [], []

    def connect(node: str) -> None:  # Tarjan's algorithm
        order[node] = low[node] = len(order)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in order:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            connect(node)
    return cycles


def test_medtk_has_no_import_cycle():
    modules = module_files(package_dirs(REPO_ROOT))
    assert {"medtk.errors", "medtk.runtime.imaging", "medtk.serve", "medtk.devices"} <= set(modules)
    assert import_cycles(REPO_ROOT) == []


def _project(root: Path, files: dict[str, str]) -> Path:
    (root / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "medtk" = "toolkit", "medtk.runtime" = "runtime" }\n')
    for name, text in {"toolkit/__init__.py": "", "runtime/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    """The cycle issue 20 removed: imaging imported intensity at the top, intensity imported imaging's
    `probe` inside `describe_intensity`."""
    root = _project(tmp_path, {
        "runtime/imaging.py": "from medtk.runtime.intensity import to_uint8\ndef probe(path): ...\n",
        "runtime/intensity.py": "def describe_intensity(paths):\n    from medtk.runtime.imaging import probe\n",
        "toolkit/errors.py": "",
    })
    assert import_cycles(root) == [["medtk.runtime.imaging", "medtk.runtime.intensity"]]


def test_relative_and_submodule_imports_are_resolved_and_type_checking_is_not_counted(tmp_path):
    root = _project(tmp_path, {
        "runtime/a.py": "from . import b\n",
        "runtime/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from medtk.runtime.a import X\n"
                        "def f():\n    import medtk.runtime.c\n",
        "runtime/c.py": "from medtk.runtime import a\n",
    })
    assert import_cycles(root) == [["medtk.runtime.a", "medtk.runtime.b", "medtk.runtime.c"]]
    (root / "runtime/c.py").write_text("import medtk.errors\n")
    assert import_cycles(root) == []
