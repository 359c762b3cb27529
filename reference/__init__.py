"""Reference solutions for the dgm-grade assignments, one module per homework.

Each module implements ``/work/shared/spec/student_api.md`` exactly; the
student handouts are generated from these files (signatures and docstrings
kept, bodies replaced by ``raise NotImplementedError``).
"""
