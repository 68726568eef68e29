"""Code-shape facts the architecture test checks: modules without ``__all__`` and functions
whose body (docstring excluded) is longer than a limit.

Run ``python tools/code_shape.py`` to list them.
"""

from __future__ import annotations

import ast
import pathlib

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "itscube"
MAX_LINES = 80


def _defines_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(getattr(t, "id", None) == "__all__" for t in targets):
            return True
    return False


def body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its signature and docstring."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def report(src: pathlib.Path = SRC, limit: int = MAX_LINES) -> tuple[list[str], list[str]]:
    """(modules without ``__all__``, ``module:function (lines)`` longer than ``limit``)."""
    no_all, long = [], []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text())
        rel = path.relative_to(src.parent).with_suffix("").as_posix().replace("/", ".")
        if not _defines_all(tree):
            no_all.append(rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = body_lines(node)
                if n > limit:
                    long.append(f"{rel}:{node.name} ({n})")
    return no_all, long


if __name__ == "__main__":
    missing, too_long = report()
    print("modules without __all__:", *missing or ["none"], sep="\n  ")
    print(f"functions over {MAX_LINES} lines:", *too_long or ["none"], sep="\n  ")
