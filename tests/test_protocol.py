"""The wire protocol: JSON + safetensors frames, size caps, and what the judge refuses."""
from __future__ import annotations

import io
import json
import struct

import pytest
import torch

from grader.worker.protocol import (MAGIC, Encoder, Fixture, ProtocolError, Unsupported, check_tensor_count,
                                    decode_plain, pack_frame, plain_tensor, read_frame)


def roundtrip(frame: bytes, cap: int = 1 << 20):
    stream = io.BytesIO(frame)

    def read_exact(n: int) -> bytes:
        data = stream.read(n)
        if len(data) != n:
            raise EOFError
        return data

    return read_frame(read_exact, cap)


def test_values_round_trip_as_plain_data():
    enc = Encoder()
    x = torch.randn(3, 2, dtype=torch.float64)
    value = (x, [1, 2.5, None, True, "s"], {"k": torch.tensor(3)}, float("nan"), torch.zeros(()))
    header, tensors = roundtrip(pack_frame({"v": enc.encode(value)}, enc.tensors))
    got = decode_plain(header["v"], tensors)
    assert torch.equal(got[0], x) and got[0].dtype == torch.float64
    assert got[1] == [1, 2.5, None, True, "s"] and torch.equal(got[2]["k"], torch.tensor(3))
    assert got[3] != got[3] and got[4].shape == ()


def test_same_object_gets_one_key_and_fixtures_are_named():
    enc = Encoder()
    x = torch.ones(2)
    fixture = Fixture("mlp_vae", {"x_dim": 2}, {"w": torch.zeros(1)})
    node = enc.encode([x, x, fixture])
    assert node[0] == node[1]
    assert node[2]["__fixture__"] == "mlp_vae" and enc.key_of(fixture) == node[2]["key"]


def test_tensor_subclasses_are_stripped_to_plain_tensors():
    class Rigged(torch.Tensor):
        def __eq__(self, other):
            return True

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs or {})

    rigged = torch.zeros(3).as_subclass(Rigged)
    plain = plain_tensor(rigged)
    assert type(plain) is torch.Tensor and torch.equal(plain, torch.zeros(3))


def test_oversized_frames_are_refused_before_reading_them():
    huge_header = MAGIC + struct.pack(">I", 1 << 30)
    with pytest.raises(ProtocolError, match="header"):
        roundtrip(huge_header)
    head = json.dumps({"ok": True}).encode()
    huge_blob = MAGIC + struct.pack(">I", len(head)) + head + struct.pack(">Q", 1 << 40)
    with pytest.raises(ProtocolError, match="payload"):
        roundtrip(huge_blob)


@pytest.mark.parametrize("frame", [
    b"XXXX" + b"\0" * 20,
    MAGIC + struct.pack(">I", 5) + b"{bad}" + struct.pack(">Q", 0),
    MAGIC + struct.pack(">I", 2) + b"[]" + struct.pack(">Q", 0),
    MAGIC + struct.pack(">I", 2) + b"{}" + struct.pack(">Q", 8) + b"\x10" + b"\0" * 7,
])
def test_malformed_frames_raise_protocol_errors(frame):
    with pytest.raises(ProtocolError):
        roundtrip(frame)


@pytest.mark.parametrize("node", [
    {"__tensor__": "missing"},
    {"__pickle__": "gASV"},
    {"__fixture__": "x"},
    {"__tuple__": "notalist"},
])
def test_judge_decodes_only_plain_nodes(node):
    with pytest.raises(ProtocolError):
        decode_plain(node, {})


def test_unsupported_values_and_foreign_devices_decode_to_markers():
    assert decode_plain({"__unsupported__": "numpy.ndarray"}, {}) == Unsupported("numpy.ndarray")
    got = decode_plain({"__tensor__": "t0", "device": "cuda:0"}, {"t0": torch.zeros(1)})
    assert isinstance(got, Unsupported) and "cuda" in got.type_name


def test_deep_nesting_is_refused():
    node: object = 1
    for _ in range(100):
        node = [node]
    with pytest.raises(ProtocolError):
        decode_plain(node, {})


def test_tensor_count_is_checked_before_decoding():
    tensors = {f"t{i}": torch.zeros(1) for i in range(11)}
    frame = pack_frame({"ok": True}, tensors)
    reader = io.BytesIO(frame)
    assert len(read_frame(lambda n: reader.read(n), 1 << 20, max_tensors=11)[1]) == 11
    reader = io.BytesIO(frame)
    with pytest.raises(ProtocolError, match="holds more than the 10 tensors the judge accepts"):
        read_frame(lambda n: reader.read(n), 1 << 20, max_tensors=10)
    # a table too large for that many tensors is refused before it is parsed
    blob = struct.pack("<Q", 10 * 512 + 4097) + b" " * (10 * 512 + 4097)
    with pytest.raises(ProtocolError, match="a tensor table of 9217 bytes"):
        check_tensor_count(blob, 10)


def test_the_worker_seeds_the_cpu_as_torch_manual_seed_does():
    """seed_everything's CPU path (the CPU generator alone, without torch.manual_seed's queued CUDA
    seeding) leaves torch, random and numpy in the state torch.manual_seed and the seeds would."""
    import random

    import numpy as np

    from grader.worker.main import seed_everything

    def draws():
        return torch.randn(5, dtype=torch.float64), torch.randint(0, 1000, (3,)), random.random(), np.random.rand()

    for seed in (0, 7, 2**32 - 1, 2**40 + 3):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        expected = draws()
        torch.manual_seed(12345)  # some other state in between
        seed_everything(seed, "cpu")
        got = draws()
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        assert got[2:] == expected[2:]
        assert torch.initial_seed() == seed
