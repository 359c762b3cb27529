"""Reading student source in the judge without letting it break the judge.

CPython's parser and compiler give up on deeply nested code (``- - - ... 1``
or ``a.b.b.b...`` 100,000 levels deep) with a ``MemoryError`` ("parser stack
overflow") or a ``RecursionError``, not a ``SyntaxError``. Every place the
judge parses student code (the submission loader, the notebook filter, the
feedback's call graph) goes through ``parse``, which reports that as
``TooComplex``, a ``SyntaxError``: handled wherever a syntax error is.
"""
from __future__ import annotations

import ast

PARSER_LIMITS = (RecursionError, MemoryError)  # what CPython's parser/compiler raise on nesting too deep


class TooComplex(SyntaxError):
    """Source nested too deeply for Python's own parser: Python could not import it either."""

    def __init__(self, filename: str, error: BaseException) -> None:
        super().__init__(f"the code is nested too deeply for Python's parser ({type(error).__name__}); "
                         "Python cannot run it: split the deepest expression into steps")
        self.filename = filename


def parse(source: str | bytes, filename: str = "<unknown>", *, compile_too: bool = False) -> ast.Module:
    """``ast.parse`` (and, with ``compile_too``, ``compile``: it finds errors the parser does not),
    raising SyntaxError (TooComplex for nesting too deep), or ValueError for a null byte."""
    try:
        tree = ast.parse(source, filename)
        if compile_too:
            compile(source, filename, "exec", dont_inherit=True)
    except PARSER_LIMITS as exc:
        raise TooComplex(filename, exc) from None
    return tree
