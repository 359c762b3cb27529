"""Returns a tensor subclass rigged to equal anything.

__eq__ is always True, __sub__ / __abs__ give zeros, and __torch_function__
answers every torch function (allclose, isclose, isfinite, max, ...) with a
"matches" value. Only dtype, shape and bytes cross to the judge, as a plain
torch.Tensor, so none of it survives. Honest part: 0 (wrong values).
"""
import torch


class Rigged(torch.Tensor):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __sub__(self, other):
        return torch.zeros(self.shape, dtype=self.dtype)

    __rsub__ = __sub__

    def __abs__(self):
        return torch.zeros(self.shape, dtype=self.dtype)

    def __bool__(self):
        return True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("allclose", "equal"):
            return True
        if name in ("isclose", "isfinite", "eq"):
            return torch.ones((), dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def log_mean_exp(x, dim):
    wrong = torch.full(x.sum(dim).shape, 7.0, dtype=x.dtype)
    return wrong.as_subclass(Rigged)


def log_bernoulli_with_logits(x, logits):
    return (x * 0 + 1.0).sum(-1).as_subclass(Rigged)
