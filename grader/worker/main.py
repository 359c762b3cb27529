"""The worker loop: the only grader code that runs beside student code.

Started by a sandbox (grader/sandbox/) with the protocol on stdin/stdout and
the student's files in its working directory. It:

1. loads the judge's seccomp filter on itself (confine.py), when there is one;
2. moves the protocol pipes to private file descriptors and points fd 0 at
   /dev/null and fds 1, 2 at a capture file, so student prints never mix
   with frames (they come back, capped, in each response);
3. imports torch before any student code (a warm worker);
4. answers requests: ``files`` writes the student's files into its working
   directory (a worker started before its submission was known: see
   grader/standby.py), ``load`` imports the student module, ``call`` calls one
   of its functions on decoded arguments, optionally returning gradients,
   the result of a second call on the same objects and of a third on
   inputs built afresh (``repeat``), and the inputs as they were after the calls.

Nothing here is trusted by the judge: after import, student code owns this
process and may write anything to the pipe. The judge caps and validates
every frame it reads.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import random
import sys
import time
import traceback
from typing import Any

from . import fixtures, protocol
from .confine import confine

MAX_OUTPUT_CHARS = 4000


class Worker:
    def __init__(self, proto_in: int, proto_out: int, capture_path: str) -> None:
        self.proto_in = os.fdopen(proto_in, "rb", buffering=0)
        self.proto_out = os.fdopen(proto_out, "wb", buffering=0)
        self.capture_path = capture_path
        self.capture_offset = 0
        self.module: Any = None
        self.module_error: str | None = None

    # ---------------------------------------------------------------- I/O
    def read_exact(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.proto_in.read(min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def send(self, header: dict, tensors: dict | None = None) -> None:
        header["output"] = self.new_output()
        self.proto_out.write(protocol.pack_frame(header, tensors))

    def new_output(self) -> str:
        """What the student printed since the last response, capped."""
        try:
            with open(self.capture_path, "rb") as f:
                f.seek(self.capture_offset)
                data = f.read(MAX_OUTPUT_CHARS + 1)
                self.capture_offset = f.seek(0, os.SEEK_END)
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        return text[:MAX_OUTPUT_CHARS] + ("\n[output truncated]" if len(text) > MAX_OUTPUT_CHARS else "")

    # ---------------------------------------------------------------- loop
    def serve(self) -> None:
        while True:
            try:
                header, tensors = protocol.read_frame(self.read_exact, max_blob_bytes=1 << 34)
            except EOFError:
                return
            op = header.get("op")
            if op == "files":
                self.send(self.put_files(header.get("files"), tensors))
            elif op == "load":
                self.send(self.load(header["module"]))
            elif op == "call":
                self.send(*self.call(header, tensors))
            elif op == "ping":
                self.send({"ok": True})
            else:
                self.send({"ok": False, "kind": "protocol", "error": f"unknown op {op!r}"})

    def put_files(self, names: Any, tensors: dict) -> dict:
        """Write the student's files (name -> key of a uint8 tensor holding its bytes) into the working
        directory, before any student code runs; refused once a module was loaded or for a path that
        would leave the directory."""
        if self.module is not None or self.module_error is not None or not isinstance(names, dict):
            return {"ok": False, "kind": "protocol", "error": "files come once, before the module is loaded"}
        here = os.path.realpath(os.getcwd())
        for name, key in names.items():
            target = os.path.realpath(os.path.join(here, str(name)))
            if os.path.isabs(str(name)) or not target.startswith(here + os.sep) or key not in tensors:
                return {"ok": False, "kind": "protocol", "error": f"bad file name {str(name)[:100]!r}"}
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            with open(target, "wb") as f:
                data = tensors[key].contiguous()
                f.write(ctypes.string_at(data.data_ptr(), data.numel()) if data.numel() else b"")
        return {"ok": True}

    def load(self, module_name: str) -> dict:
        sys.path.insert(0, os.getcwd())
        try:
            self.module = importlib.import_module(module_name)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            self.module_error = describe(exc)
            return {"ok": False, "kind": "import", "error": self.module_error, "traceback": student_traceback(exc)}
        names = sorted(n for n in vars(self.module) if not n.startswith("_"))
        return {"ok": True, "names": names}

    def call(self, header: dict, tensors: dict) -> tuple[dict, dict]:
        request_id = header.get("id")
        if self.module is None:
            return {"id": request_id, "ok": False, "kind": "import", "error": self.module_error or "module not loaded"}, {}
        import torch

        device = header.get("device", "cpu")
        default_dtype = torch.get_default_dtype()
        try:
            if header.get("default_dtype"):
                torch.set_default_dtype(getattr(torch, header["default_dtype"]))
            grad = header.get("grad") or {}
            wrt = set(grad.get("wrt", []))
            seed = int(header.get("seed", 0))

            def build(raw: dict) -> tuple[dict, Builder, list, dict]:
                """The request's tensors placed on the device, and the call's arguments built from them."""
                placed = {k: place(t, device, requires_grad=k in wrt) for k, t in raw.items()}
                builder = Builder(self.module, placed, device)
                return placed, builder, builder.build(header.get("args", [])), \
                    builder.build(header.get("kwargs", {"__dict__": {}}))

            def invoke(args: list, kwargs: dict) -> Any:
                """The student's function (or method of the first argument) on these arguments, freshly seeded."""
                seed_everything(seed, device)
                return getattr(args[0], method)(*args[1:], **kwargs) if method is not None else target(*args, **kwargs)

            pristine = {k: t.clone() for k, t in tensors.items()} if header.get("repeat") else {}
            inputs, builder, args, kwargs = build(tensors)
            try:
                target, method = resolve(self.module, header["fn"], args)
            except LookupError as exc:
                return {"id": request_id, "ok": False, "kind": "missing", "error": str(exc)}, {}
            start = time.perf_counter()
            result = invoke(args, kwargs)
            elapsed = time.perf_counter() - start
            out = protocol.Encoder()
            reply: dict = {"id": request_id, "ok": True, "elapsed": elapsed, "result": out.encode(result)}
            if grad:
                reply["grads"] = self.gradients(grad, result, inputs, builder, out)
            if header.get("repeat"):
                # the same call again, on the same objects (mutation shows), and on inputs built afresh
                # (whether the function gives the same result twice at all)
                reply["repeat_result"] = out.encode(copied(invoke(args, kwargs)))
                _, _, fresh_args, fresh_kwargs = build(pristine)
                reply["control_result"] = out.encode(copied(invoke(fresh_args, fresh_kwargs)))
            if header.get("return_inputs"):
                reply["inputs_after"] = {k: out.encode(t) for k, t in inputs.items()}
            return reply, out.tensors
        except BaseException as exc:
            return {
                "id": request_id,
                "ok": False,
                "kind": "exception",
                "error": describe(exc),
                "traceback": student_traceback(exc),
            }, {}
        finally:
            torch.set_default_dtype(default_dtype)

    def gradients(self, grad: dict, result: Any, inputs: dict, builder: "Builder", out: "protocol.Encoder") -> dict:
        """d(<cotangent, chosen output>)/d(input) for each requested input key.

        A tensor input gives a tensor (or None when the output does not depend
        on it); a fixture input gives a dict of parameter name -> gradient.
        """
        import torch

        chosen = result
        for index in grad.get("output") or []:
            chosen = chosen[index]
        if not isinstance(chosen, torch.Tensor):
            raise TypeError(f"expected a tensor output to differentiate, got {type(chosen).__name__}")
        cot_key = grad.get("cotangent")
        cotangent = inputs[cot_key].detach() if cot_key else torch.ones_like(chosen)
        targets: list[tuple[str, str | None, Any]] = []
        for key in grad.get("wrt", []):
            if key in builder.fixtures:
                for name, p in builder.fixtures[key].named_parameters():
                    targets.append((key, name, p))
            else:
                targets.append((key, None, inputs[key]))
        if chosen.requires_grad and targets:
            values = torch.autograd.grad(
                chosen, [t for _, _, t in targets], grad_outputs=cotangent.to(chosen.dtype), allow_unused=True
            )
        else:
            values = [None] * len(targets)
        grads: dict = {}
        for (key, name, _), g in zip(targets, values):
            if name is None:
                grads[key] = out.encode(g)
            else:
                grads.setdefault(key, {"__dict__": {}})["__dict__"][name] = out.encode(g)
        return grads


class Builder:
    """Decodes request values in the worker, building fixtures and student objects."""

    def __init__(self, module: Any, inputs: dict, device: str) -> None:
        self.module, self.inputs, self.device = module, inputs, device
        self.fixtures: dict[str, Any] = {}

    def build(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.build(v) for v in node]
        if "__tensor__" in node:
            return self.inputs[node["__tensor__"]]
        if "__tuple__" in node:
            return tuple(self.build(v) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: self.build(v) for k, v in node["__dict__"].items()}
        if "__float__" in node:
            return float(node["__float__"])
        if "__fixture__" in node:
            weights = {k: self.build(v).detach() for k, v in node["weights"].items()}
            obj = fixtures.build(node["__fixture__"], self.build(node["params"]), weights, self.module)
            if hasattr(obj, "to"):
                obj = obj.to(self.device)
            self.fixtures[node["key"]] = obj
            return obj
        if "__student__" in node:
            cls = getattr(self.module, node["__student__"], None)
            if cls is None:
                raise LookupError(f"{node['__student__']} is not defined in the submission")
            return cls(*self.build(node["args"]), **{k: self.build(v) for k, v in node["kwargs"].items()})
        raise ValueError(f"cannot build {str(node)[:80]}")


def resolve(module: Any, fn_name: str, args: list) -> tuple[Any, str | None]:
    """'kl_normal' -> (function, None); 'AffineCoupling.forward' -> (None, 'forward')."""
    if "." in fn_name:
        _, method = fn_name.split(".", 1)
        if not args or not hasattr(args[0], method):
            raise LookupError(f"{fn_name} is not defined in the submission")
        return None, method
    target = getattr(module, fn_name, None)
    if target is None or not callable(target):
        raise LookupError(f"{fn_name} is not defined in the submission")
    return target, None


def place(t: Any, device: str, requires_grad: bool) -> Any:
    t = t.to(device)
    if requires_grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def copied(value: Any) -> Any:
    """``value`` with every tensor a fresh copy, so that a result aliasing an earlier one (or an input)
    is encoded as it is now, not under the earlier object's key."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(copied(v) for v in value)
    if isinstance(value, list):
        return [copied(v) for v in value]
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    return value


def seed_everything(seed: int, device: str = "cpu") -> None:
    """Seed every generator student code may draw from, before each call.

    On the CPU the sandboxes set CUDA_VISIBLE_DEVICES to "", so the CPU generator is the only
    torch generator there is: seeding it alone is what ``torch.manual_seed`` does there, without
    queueing a CUDA seeding (with a captured stack) that costs about 0.3 ms a call.
    """
    import torch

    random.seed(seed)
    if device == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % (2**32))


def describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the submission called sys.exit({exc.code!r})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def student_traceback(exc: BaseException) -> str:
    """The traceback trimmed to frames in the student's own files."""
    here = os.getcwd() + os.sep
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(here) or f.filename == "<string>"]
    lines = traceback.format_list(frames)
    text = "".join(lines).replace(here, "") + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-3000:]


def main() -> None:
    # the seccomp filter, before anything else (the runtime folder is sys.argv[1]: see WORKER_BOOT)
    if len(sys.argv) > 1:
        confine(sys.argv[1])
    # 1. the protocol gets private descriptors; the student gets /dev/null and a capture file
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    capture_dir = os.environ.get("DGM_CAPTURE_DIR", "/tmp")
    capture_path = os.path.join(capture_dir, f"dgm-output-{os.getpid()}.txt")
    capture = os.open(capture_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    # 2. warm: torch is imported before any student code
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    Worker(proto_in, proto_out, capture_path).serve()

if __name__ == "__main__":
    main()
