"""Where and how a job runs: device, precision, threads, seeds, versions and the process group.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; a process started alone is rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError

# torch.compile's modes that `usgan train --compile-mode` and `usgan bench --compile` take;
# those in GRAPH_MODES capture CUDA graphs on a GPU (on a CPU they compile without).
COMPILE_MODES = ("default", "reduce-overhead")
PRECISIONS = ("fp32", "bf16")  # what ``--precision`` names, besides ``auto``
GRAPH_MODES = ("reduce-overhead",)


@dataclass(frozen=True)
class Dist:
    """Where this process stands: rank, world size, local rank."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (on every rank); ``[obj]`` alone."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return Dist(rank, world, local_rank)


def shutdown(d: Dist) -> None:
    """Leave the process group (if any)."""
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(name: str, d: Dist | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` is GPU 0 (under torchrun, the
    process's local rank); ``cuda:N`` is GPU N. A GPU that is not there is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    kind, sep, index = name.partition(":")
    if kind != "cuda" or (sep and not index.isdigit()):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if sep and d is not None and d.enabled:
        raise ConfigError(f"--device {name}: under torchrun each process takes the GPU of its "
                          "local rank; use --device cuda")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is available; use --device cpu")
    if not sep:
        return torch.device("cuda", d.local_rank if d else 0)
    if int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                          f"CUDA GPU(s), numbered from 0")
    return torch.device("cuda", int(index))


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision ``name`` resolves to on ``device`` (`precision_choice`)."""
    return precision_choice(name, device)[0]


def precision_choice(name: str, device: torch.device,
                     measure: Callable[[], dict[str, float]] | None = None) -> tuple[str, str]:
    """``(precision, why)``. ``auto``: on CUDA, bf16 where the GPU supports it; on a CPU, fp32
    unless oneDNN computes bf16 natively (AVX512-BF16 or AMX), and then whichever of the two
    ``measure`` (default `measured_step_seconds`, cached per machine) found faster."""
    if name != "auto":
        return name, "asked for"
    if device.type == "cuda":
        ok = bf16_native(device)
        return ("bf16", "the GPU computes bf16") if ok else ("fp32", "no bf16 on this GPU")
    if not bf16_native(device):
        return "fp32", ("bf16 is emulated on this CPU (no AVX512-BF16 or AMX): far slower "
                        "(docs/benchmarks.md)")
    secs = (measure or measured_step_seconds)()
    pick = "bf16" if secs["bf16"] < secs["fp32"] else "fp32"
    return pick, (f"measured on this CPU: a convolution step takes {secs['fp32'] * 1e3:.1f} ms "
                  f"in fp32 and {secs['bf16'] * 1e3:.1f} ms in bf16")


def _kept_precision(started: dict[str, str] | None, dev: torch.device) -> str | None:
    """The precision recorded in ``started`` (a run's config.json ``runtime``) if it ran on
    the kind of device ``dev`` is, else None."""
    kept, where = (started or {}).get("precision"), str((started or {}).get("device", ""))
    return kept if kept in PRECISIONS and where.split(":")[0] == dev.type else None


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (a CUDA GPU with bf16, or `cpu_bf16_native`);
    ``auto`` may still choose fp32 on such a CPU, where fp32 measured faster."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_bf16_native()


def cpu_bf16_native() -> bool:
    """Whether oneDNN computes bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def measured_step_seconds() -> dict[str, float]:
    """Seconds of one small DCGAN-discriminator-like convolution step (batch 16, forward and
    backward, channels_last) in fp32 and in bf16 autocast on this CPU. Measured once per CPU,
    torch version and thread count, then read from ``$USGAN_CACHE/precision.json``; the
    global random state is left as it was."""
    import json

    root = os.environ.get("USGAN_CACHE")
    path = (Path(root).expanduser() if root else Path.home() / ".cache" / "usgan")
    path = path / "precision.json"
    key = f"{cpu_name()}|torch {torch.__version__}|threads {torch.get_num_threads()}"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        cached = {}
    if isinstance(cached, dict) and isinstance(cached.get(key), dict):
        return {k: float(v) for k, v in cached[key].items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(64, 128, 4, 2, 1), torch.nn.LeakyReLU(0.2),
                                  torch.nn.Conv2d(128, 256, 4, 2, 1))
        net = net.to(memory_format=torch.channels_last)
        x = torch.randn(16, 64, 32, 32).to(memory_format=torch.channels_last)
        secs = {p: _step_seconds(net, x, p) for p in PRECISIONS}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({**(cached if isinstance(cached, dict) else {}), key: secs}))
        os.replace(tmp, path)
    return secs


def _step_seconds(net: torch.nn.Module, x: torch.Tensor, precision: str, reps: int = 5
                  ) -> float:
    """Mean seconds of a forward and backward pass of ``net`` on ``x`` (after two warm-up
    passes)."""
    import time

    def step() -> None:
        with autocast(precision, torch.device("cpu")):
            y = net(x)
        y.float().square().mean().backward()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t0) / reps


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``precision`` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def handling(signum: int, handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for signal ``signum`` while inside, the previous one restored after; outside
    the main thread (where Python cannot install one) nothing changes."""
    try:
        old = signal.signal(signum, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, old)


def compile_failure(err: BaseException, what: str = "train") -> ConfigError | None:
    """A torch.compile error (dynamo, inductor) as one line naming it (and telling to
    ``what`` without --compile), else None."""
    if not type(err).__module__.startswith(("torch._dynamo", "torch._inductor")):
        return None
    inner = getattr(err, "inner_exception", None) or err.__cause__ or err
    first = (str(inner).strip().splitlines() or [""])[0]
    return ConfigError(f"--compile: torch.compile failed ({type(inner).__name__}: {first}); "
                       f"{what} without --compile")


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op CPU threads (None: torch's default)."""
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def seed_for(seed: int, phase: int, stream: int, rank: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, phase, random stream, rank)."""
    return (seed * 1_000_003 + phase * 7919 + stream * 104_729 + rank * 15_485_863) % 2**63


def usgan_version() -> str:
    """The installed usgan version (from the package metadata)."""
    try:
        return version("usgan")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0.0.0"


def versions() -> dict[str, str]:
    """Versions recorded in every run's config.json."""
    return {"usgan": usgan_version(), "torch": torch.__version__,
            "python": platform.python_version()}


@dataclass(frozen=True)
class Runtime:
    """Device, precision and process group of one job."""

    device: torch.device
    precision: str
    dist: Dist = field(default_factory=Dist)
    compile: str | None = None  # torch.compile's mode for the networks that train, or eager
    why: str = ""  # why this precision (`precision_choice`)

    @classmethod
    def create(cls, device: str, precision: str, d: Dist | None = None,
               compile: str | None = None, started: dict[str, str] | None = None) -> Runtime:
        """Resolve ``auto`` device and precision for this process. ``started``: the runtime a
        resumed run recorded (config.json); ``auto`` keeps its precision on the same kind of
        device, so that resume stays bit-identical. Under torchrun on a CPU, rank 0 measures
        and every rank takes its choice (ranks measuring apart could disagree)."""
        d = d or Dist()
        dev = resolve_device(device, d)
        if precision == "auto" and (kept := _kept_precision(started, dev)):
            return cls(dev, kept, d, compile, "the precision this run started in")
        if dev.type == "cpu" and d.enabled:
            chosen, why = d.broadcast(precision_choice(precision, dev) if d.is_main else None)
        else:
            chosen, why = precision_choice(precision, dev)
        return cls(dev, chosen, d, compile, why)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.precision, self.device)

    def compiled(self, net: nn.Module) -> nn.Module:
        """``net`` through torch.compile in this runtime's mode (the module itself when
        eager); the compiled module shares its parameters. Static shapes: a D that sees the
        real and generated batch as one (2B images) and then G's batch (B) gets one graph per
        size, where torch's automatic dynamic shapes failed inductor on self-attention
        (torch 2.14, "cannot determine truth value of Relational"), and CUDA graphs want
        static shapes anyway."""
        if self.compile is None:
            return net
        return torch.compile(net, mode=self.compile, dynamic=False)  # type: ignore[return-value]

    def step_begin(self) -> None:
        """Call before each training step. Under CUDA graphs (``reduce-overhead``) a step
        starts a new generation of torch's CUDA graph trees: a step runs D two or three times,
        and without it a later pass overwrites the outputs of an earlier one."""
        if self.compile in GRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last on CPU and CUDA (faster convolutions), else contiguous; contiguous
        under ``compile`` too (inductor's backward of a channels_last transposed convolution
        fails a stride assertion, torch 2.11, docs/benchmarks.md)."""
        if self.device.type in ("cpu", "cuda") and not self.compile:
            return torch.channels_last
        return torch.contiguous_format
