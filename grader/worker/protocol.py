"""Framed messages between the judge and a worker: JSON header + safetensors blob.

This module is shared by both sides and imports nothing but the standard
library, torch and safetensors, because it also runs inside the sandbox.

A frame on the wire::

    b"DGM1" | u32 header length | header (UTF-8 JSON) | u64 blob length | blob

The blob is a safetensors file holding every tensor the header refers to.
Nothing is ever pickled: the judge only decodes JSON and raw tensor bytes.

Values (arguments, results) are encoded as a JSON tree in which tensors are
replaced by references into the blob::

    tensor        {"__tensor__": "t3", "device": "cpu"}
    tuple         {"__tuple__": [...]}
    list          [...]
    dict          {"__dict__": {"key": ...}}
    float         1.5, or {"__float__": "nan"} for non-finite values
    fixture       {"__fixture__": "toy_vae", "params": {...}, "weights": {"w": <tensor>}}
    student obj   {"__student__": "AffineCoupling", "args": [...], "kwargs": {...}}
    anything else {"__unsupported__": "numpy.ndarray"}   (worker -> judge only)

Fixtures and student objects are built by the worker from their name and
weights (grader/worker/fixtures.py); the judge only ever receives plain data.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from safetensors.torch import load as _load_tensors
from safetensors.torch import save as _save_tensors

MAGIC = b"DGM1"
MAX_HEADER_BYTES = 4 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000
# Tensors in one reply the judge decodes (honest replies hold tens): decoding costs per tensor, and
# a max-size frame fits millions of tiny ones. Checked from the blob's table before decoding it.
MAX_REPLY_TENSORS = 10_000
TENSOR_ENTRY_BYTES = 512  # a generous size for one entry of that table (name, dtype, shape, offsets)


class ProtocolError(Exception):
    """A frame or value tree that does not follow this protocol."""


@dataclass(frozen=True, eq=False)
class Fixture:
    """A callable the worker builds from a registered name and weights.

    Example: ``Fixture("toy_vae", params={"z_dim": 1}, weights={"enc_w": w})``.
    """

    name: str
    params: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class StudentObject:
    """An instance of a class from the student's module, built in the worker."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# frames


def pack_frame(header: dict, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    """header + tensors -> bytes of one frame."""
    head = json.dumps(header, allow_nan=False).encode()
    blob = _save_tensors(tensors) if tensors else b""
    return MAGIC + struct.pack(">I", len(head)) + head + struct.pack(">Q", len(blob)) + blob


def read_frame(read_exact: Callable[[int], bytes], max_blob_bytes: int,
               max_tensors: int | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read one frame with ``read_exact(n) -> n bytes``; sizes are checked before reading,
    and the number of tensors (at most ``max_tensors``) before decoding them.

    Raises ProtocolError for a bad magic, an oversized part or undecodable contents.
    """
    if read_exact(4) != MAGIC:
        raise ProtocolError("bad frame magic")
    (head_len,) = struct.unpack(">I", read_exact(4))
    if head_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {head_len} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(read_exact(head_len))
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise ProtocolError(f"frame header is not JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not a JSON object")
    (blob_len,) = struct.unpack(">Q", read_exact(8))
    if blob_len > max_blob_bytes:
        raise ProtocolError(f"frame payload of {blob_len} bytes exceeds {max_blob_bytes}")
    if blob_len == 0:
        return header, {}
    blob = read_exact(blob_len)
    if max_tensors is not None:
        check_tensor_count(blob, max_tensors)
    try:
        tensors = _load_tensors(blob)
    except Exception as exc:  # safetensors raises its own error types
        raise ProtocolError(f"frame payload is not a safetensors blob: {exc}") from None
    return header, tensors


def check_tensor_count(blob: bytes, max_tensors: int) -> None:
    """ProtocolError unless the safetensors ``blob`` holds at most ``max_tensors`` tensors,
    read from its table (u64 little-endian length, then JSON) with the table's size bounded first."""
    if len(blob) < 8:
        raise ProtocolError("frame payload is not a safetensors blob: too short")
    (table_len,) = struct.unpack("<Q", blob[:8])
    if table_len > max_tensors * TENSOR_ENTRY_BYTES + 4096:
        raise ProtocolError(f"the reply holds more than the {max_tensors} tensors the judge accepts "
                            f"(a tensor table of {table_len} bytes)")
    try:
        table = json.loads(blob[8:8 + table_len])
    except (ValueError, RecursionError):
        raise ProtocolError("frame payload is not a safetensors blob: its table is not JSON") from None
    count = len(table) - ("__metadata__" in table) if isinstance(table, dict) else 0
    if count > max_tensors:
        raise ProtocolError(f"the reply holds more than the {max_tensors} tensors the judge accepts ({count} tensors)")


# --------------------------------------------------------------------------
# value trees


class Encoder:
    """Turns Python values into a JSON tree plus a dict of plain tensors.

    The same tensor or fixture object always gets the same key, so a request
    can name the inputs it wants gradients for (``key_of``).
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.objects: dict[str, Any] = {}  # key -> the encoded tensor or fixture
        self._keys: dict[int, str] = {}

    def key_of(self, obj: Any) -> str:
        if id(obj) not in self._keys:
            raise KeyError("object was not encoded in this request")
        return self._keys[id(obj)]

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, torch.Tensor):
            return self._tensor(value)
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v, depth + 1) for k, v in value.items()}}
        if isinstance(value, Fixture):
            node = {
                "__fixture__": value.name,
                "params": self.encode(value.params, depth + 1),
                "weights": {k: self._tensor(w) for k, w in value.weights.items()},
            }
            return self._remember(value, node, "f")
        if isinstance(value, StudentObject):
            return {
                "__student__": value.name,
                "args": [self.encode(v, depth + 1) for v in value.args],
                "kwargs": {k: self.encode(v, depth + 1) for k, v in value.kwargs.items()},
            }
        return {"__unsupported__": f"{type(value).__module__}.{type(value).__qualname__}"}

    def _remember(self, obj: Any, node: dict, prefix: str) -> dict:
        key = self._keys.setdefault(id(obj), f"{prefix}{len(self._keys)}")
        self.objects[key] = obj
        node["key"] = key
        return node

    def _tensor(self, t: torch.Tensor) -> dict:
        if id(t) not in self._keys:
            key = self._keys[id(t)] = f"t{len(self._keys)}"
            self.objects[key] = t
            self.tensors[key] = plain_tensor(t)
        return {"__tensor__": self._keys[id(t)], "device": str(t.device)}


def plain_tensor(t: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous CPU copy that is exactly a ``torch.Tensor``.

    Strips subclasses and ``__torch_function__`` overrides, so nothing but
    dtype, shape and bytes crosses the boundary.
    """
    with torch._C.DisableTorchFunction():
        base = torch.Tensor.as_subclass(t, torch.Tensor).detach()
        return base.to("cpu", copy=True).contiguous()


def decode_plain(node: Any, tensors: dict[str, torch.Tensor], devices: frozenset[str] = frozenset({"cpu"})) -> Any:
    """Judge-side decoding: JSON tree -> Python values built only from plain data.

    Tensors land on their recorded device when it is one of ``devices``; a
    tensor reported on any other device, and any value of a type that cannot
    cross the boundary, decodes to ``Unsupported`` so a check can say so.
    """
    count = [0]

    def walk(n: Any, depth: int) -> Any:
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise ProtocolError("result nested too deeply or too large")
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, list):
            return [walk(v, depth + 1) for v in n]
        if not isinstance(n, dict) or len(n) == 0:
            raise ProtocolError(f"unexpected node {str(n)[:80]}")
        if "__tensor__" in n:
            key, device = n["__tensor__"], n.get("device", "cpu")
            if not isinstance(key, str) or key not in tensors or not isinstance(device, str):
                raise ProtocolError(f"dangling tensor reference {str(key)[:40]}")
            if device not in devices:
                return Unsupported(f"torch.Tensor on device {device[:40]}")
            return tensors[key].to(device)
        if "__tuple__" in n and isinstance(n["__tuple__"], list):
            return tuple(walk(v, depth + 1) for v in n["__tuple__"])
        if "__dict__" in n and isinstance(n["__dict__"], dict):
            return {str(k): walk(v, depth + 1) for k, v in n["__dict__"].items()}
        if "__float__" in n and n["__float__"] in ("nan", "inf", "-inf"):
            return float(n["__float__"])
        if "__unsupported__" in n:
            return Unsupported(str(n["__unsupported__"])[:200])
        raise ProtocolError(f"unexpected node {str(n)[:80]}")

    return walk(node, 0)


@dataclass(frozen=True)
class Unsupported:
    """A result value of a type that cannot cross the boundary (e.g. a numpy array)."""

    type_name: str
