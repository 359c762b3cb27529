"""The check API: how a TA writes a check, and the ``student`` it calls through.

An assignment has two check files, and the file decides visibility:

    assignments/<id>/checks_public.py   visible to students, run by `check`;
                                        must not import reference/
    assignments/<id>/checks_hidden.py   compared with the reference; graded only

Each file makes one registry and adds checks to it::

    checks = Checks()

    @checks.add("kl_normal", "zero for identical distributions", points=1)
    @given(q=gaussians())
    def kl_self_is_zero(student, q):
        kl = student.kl_normal(q.mean, q.log_var, q.mean, q.log_var)
        expect_close(kl, torch.zeros(q.batch_shape, dtype=q.dtype))

``student.kl_normal(...)`` runs the student's function in the worker and
returns its decoded output; ``student.call(...)`` also returns gradients and
the inputs as they were after the call (see ``Student.call``).

Value pins and what they gate: a check that tests consistency (forward and
inverse agree) or a special case (``w = 0`` gives ``eps_uncond``) can be
passed by a degenerate answer (the identity, zeros, an echo of an input). It
names the checks that pin the function's value on generic inputs::

    @checks.add("AffineCoupling.inverse", "inverse(forward(x)) = x", requires=("coupling_forward_definition",))

and its points count only when those pass (``judge.apply_requirements``).
A required check that is not part of the run (a hidden pin under ``check``)
gates nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .client import NOT_REPEATED, CallResult, WorkerClient
from .compare import CheckFailed, describe
from .worker.protocol import Fixture, StudentObject, Unsupported

__all__ = ["Check", "Checks", "Student", "Call", "Fixture", "StudentObject", "CheckFailed"]


@dataclass(frozen=True)
class Check:
    """One graded property of one student function."""

    function: str  # the student function the property is about (feedback points here)
    prop: str  # the property, in words: "zero for identical distributions"
    points: float
    run: Callable[["Student"], None]  # the check body; may be wrapped by hypothesis @given
    uses: tuple[str, ...] = ()  # other student names it calls (missing ones fail the check)
    examples: int | None = None  # hypothesis max_examples (None: the assignment default)
    timeout: float | None = None  # per-call seconds (None: the assignment default)
    hidden: bool = False  # set by the registry of checks_hidden.py
    tags: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # ids of value-pinning checks; this check's points count only when they pass

    @property
    def name(self) -> str:
        """The results.json name: starts with the function, then a colon."""
        return f"{self.function}: {self.prop}"

    @property
    def id(self) -> str:
        return self.run.__name__

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.function, *self.uses)


@dataclass
class Checks:
    """An ordered registry of checks for one check file."""

    hidden: bool = False
    items: list[Check] = field(default_factory=list)

    def add(
        self,
        function: str,
        prop: str,
        *,
        points: float = 1,
        uses: tuple[str, ...] = (),
        examples: int | None = None,
        timeout: float | None = None,
        tags: tuple[str, ...] = (),
        requires: tuple[str, ...] = (),
    ) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            self.items.append(Check(function, prop, points, fn, tuple(uses), examples, timeout, self.hidden,
                                    tuple(tags), tuple(requires)))
            return fn

        return register


@dataclass(frozen=True)
class Call:
    """A call of a student function that returned: what the check then worked with."""

    function: str
    value: Any  # the decoded output


class Student:
    """The student's module, as the check sees it: every call goes to the worker.

    Tensors a check sends are CPU tensors; the worker moves them to the
    grading device. Results come back as plain CPU tensors, after checking
    that every returned tensor stayed on the grading device. ``last_call``
    remembers the latest call that returned, so that an exception in the
    check's own code can say which output it could not use.
    """

    def __init__(self, client: WorkerClient, *, seed: int, timeout: float,
                 call_seed: Callable[[int], int] | None = None) -> None:
        self._client, self._seed, self._timeout = client, seed, timeout
        # seed_offset -> the seed the worker gets (judge.call_seed: a keyed hash that does not tell the check)
        self._call_seed = call_seed or (lambda offset: (seed + offset) % 2**32)
        self.last_call: Call | None = None

    def __repr__(self) -> str:
        return "student"

    @property
    def device(self) -> str:
        return self._client.device

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def proxy(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, **kwargs).value

        proxy.__name__ = name
        return proxy

    def call(
        self,
        fn: str,
        *args: Any,
        wrt: tuple = (),
        output: tuple[int, ...] = (),
        cotangent: torch.Tensor | None = None,
        return_inputs: bool = False,
        default_dtype: torch.dtype | None = None,
        seed_offset: int = 0,
        **kwargs: Any,
    ) -> CallResult:
        """Call ``fn`` in the worker.

        wrt: tensors / Fixtures (by identity) to get gradients for;
        output: index path of the output to differentiate (``(0,)`` = first of a tuple);
        cotangent: weights of the vector-Jacobian product (default: ones);
        return_inputs: also return the tensor inputs as they were after the call, and the result of a
            second call on the same objects with the same seed (``expect_unchanged`` checks both: the
            first is the worker's account, the second a result the judge compares itself);
        default_dtype: torch's default dtype during the call (schedules);
        seed_offset: calls with different offsets draw different randomness
            (every call is seeded, so repeating one gives the same draws).
        """
        result = self._client.call(
            fn, args, kwargs, wrt=wrt, output=output, cotangent=cotangent, return_inputs=return_inputs,
            repeat=return_inputs, seed=self._call_seed(seed_offset), default_dtype=default_dtype, timeout=self._timeout,
        )
        # on a GPU the judge still compares on the CPU; outputs must be on the inputs' device, while a
        # function with no floating-point tensor inputs (a schedule from T, masks from sizes and an
        # index order) may use either
        on_device = self.device != "cpu" and _holds_values((args, kwargs))
        result.value = self._to_cpu(result.value, f"{fn}'s output", on_device)
        result.grads = {k: self._to_cpu(v, f"gradient from {fn}", on_device) for k, v in result.grads.items()}
        if result.repeated is not NOT_REPEATED:
            result.repeated = self._to_cpu(result.repeated, f"{fn}'s output when called again", on_device)
        if result.control is not NOT_REPEATED:
            result.control = self._to_cpu(result.control, f"{fn}'s output when called again", on_device)
        if result.inputs_after:
            result.inputs_after = {k: v.cpu() if isinstance(v, torch.Tensor) else v
                                   for k, v in result.inputs_after.items()}
        self.last_call = Call(fn, result.value)
        return result

    def _to_cpu(self, value: Any, what: str, on_device: bool = False) -> Any:
        """``value`` with its tensors on the CPU; ``on_device``: they must come back on ``self.device``."""
        if isinstance(value, torch.Tensor):
            expected = torch.device(self.device).type
            if on_device and value.device.type != expected:
                raise CheckFailed(f"{what}: got a tensor on {value.device}, expected it on {expected} like the inputs")
            return value.cpu()
        if isinstance(value, tuple):
            return tuple(self._to_cpu(v, what, on_device) for v in value)
        if isinstance(value, list):
            return [self._to_cpu(v, what, on_device) for v in value]
        if isinstance(value, dict):
            return {k: self._to_cpu(v, what, on_device) for k, v in value.items()}
        if isinstance(value, Unsupported) and value.type_name.startswith("torch.Tensor on device"):
            raise CheckFailed(f"{what}: got a {describe(value)}, expected a tensor on {self.device}")
        return value


def _holds_values(value: Any) -> bool:
    """Whether a call's arguments hold a floating-point tensor or a fixture (a model the worker
    moves to the device); integer tensors (indices, orders, timesteps) alone do not count."""
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    if isinstance(value, Fixture):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_values(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_values(v) for v in value.values())
    return False
