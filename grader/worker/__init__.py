"""The worker side of the trust boundary.

This package is copied on its own into every sandbox (a process jail or the
grading container), so it must import nothing from the rest of ``grader``:
only the standard library, torch and safetensors.
"""
