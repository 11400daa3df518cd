"""Shift layers beyond one process: DistributedDataParallel (gloo, 2 processes on the CPU) trains a
model with SparseShift, ActiveShift, GroupedShift, a convolution and a BatchNorm to the parameters of
single-process training on the same global batch; shiftzoo.sparsity_loss works on the wrapped model;
SyncBatchNorm conversion leaves the shift layers alone.

The workers are this file run as a script (``python tests/test_distributed.py RANK INIT_FILE OUT``):
they rendezvous through a file in a fresh temporary directory (no ports to collide), use one
thread each, and write what they saw to OUT; the test compares in its own process.
"""
import copy
import datetime
import os
import pathlib
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shiftzoo

WORLD = 2
STEPS = 3
BATCH = 8  # global batch: rank r trains on rows [r * BATCH // WORLD, (r + 1) * BATCH // WORLD)
LR, MOMENTUM = 0.2, 0.9
F64 = torch.float64
TIMEOUT_S = 120


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 9, 3, padding=1, bias=False), nn.BatchNorm2d(9), nn.ReLU(),
        shiftzoo.SparseShift2d(9, padding="reflect", init_shift=2.0, sparsity=1e-2),
        shiftzoo.ActiveShift2d(9, interp="cubic", init_shift=1.5),
        shiftzoo.GroupedShift2d(9),
        nn.Conv2d(9, 4, 1),
    ).to(F64)


def make_batch(step: int):
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(BATCH, 3, 7, 6, generator=g, dtype=F64), torch.randn(BATCH, 4, 7, 6, generator=g, dtype=F64)


def shard(tensor: torch.Tensor, rank: int) -> torch.Tensor:
    size = BATCH // WORLD
    return tensor[rank * size:(rank + 1) * size]


def _grads(model: nn.Module):
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def train_single_process():
    """The same training in one process: the mean of the shards' mean losses (what DDP's gradient
    averaging computes; BatchNorm normalises each shard with its own statistics, as under DDP)."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    grads, penalties = [], []
    for step in range(STEPS):
        x, y = make_batch(step)
        task = sum(F.mse_loss(model(shard(x, r)), shard(y, r)) for r in range(WORLD)) / WORLD
        penalty = shiftzoo.sparsity_loss(model)
        opt.zero_grad()
        (task + penalty).backward()
        grads.append(_grads(model))
        penalties.append(penalty.detach())
        opt.step()
    return model, grads, penalties


def _wrap(model: nn.Module, mode: str) -> nn.Module:
    """The model as a training loop of `mode` holds it: DDP's wrapper, or sharded in place by FSDP2
    (each shift layer a unit of its own, then the root)."""
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (WORLD,))
    for layer in model.modules():
        if isinstance(layer, shiftzoo.ShiftLayer):
            fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded (FSDP2) tensor's whole value; a plain tensor as it is."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def worker(rank: int, init_file: str, out: str, mode: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=pathlib.Path(init_file).as_uri(), rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    try:
        model = make_model()
        ddp = _wrap(model, mode)
        opt = torch.optim.SGD(ddp.parameters(), lr=LR, momentum=MOMENTUM)
        record = {"grads": [], "penalties": [], "penalties_unwrapped": []}
        for step in range(STEPS):
            x, y = make_batch(step)
            task = F.mse_loss(ddp(shard(x, rank)), shard(y, rank))
            penalty = shiftzoo.sparsity_loss(ddp)  # the wrapped model, as a training loop has it
            record["penalties"].append(penalty.detach())
            record["penalties_unwrapped"].append(shiftzoo.sparsity_loss(model).detach())
            opt.zero_grad()
            (task + penalty).backward()
            record["grads"].append({name: _full(g) for name, g in _grads(model).items()})
            opt.step()
        record["parameters"] = {name: _full(p.detach()).clone() for name, p in model.named_parameters()}
        record["shift_buffers"] = {name: b.clone() for name, b in model.named_buffers() if name.endswith("weight")}
        torch.save(record, pathlib.Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


class WorkerCrash(AssertionError):
    """A worker died of a signal rather than failing a check."""


def _run_workers(tmp_path: pathlib.Path, mode: str = "ddp"):
    """Starts the WORLD workers and waits for all of them (killing the rest as soon as one fails,
    so that a crash cannot leave its peer waiting at the rendezvous)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if sys.platform.startswith("linux") and os.path.exists("/sys/class/net/lo"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # both ranks on this machine: loopback only
    procs, logs = [], []
    for rank in range(WORLD):
        log = open(tmp_path / f"rank{rank}.log", "w+")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, __file__, str(rank), str(tmp_path / "rendezvous"),
                                       str(tmp_path), mode], stdout=log, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    reports = []
    for rank, (p, log) in enumerate(zip(procs, logs)):
        log.seek(0)
        reports.append(f"rank {rank} exit {p.returncode}:\n{log.read()[-3000:]}")
        log.close()
    if any(p.returncode is not None and p.returncode < 0 for p in procs):
        raise WorkerCrash("\n".join(reports))  # killed by a signal (an abort in gloo, or by us after one)
    assert all(p.returncode == 0 for p in procs), "\n".join(reports)
    return [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]


def _assert_close(got, expected, what):
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-13, msg=what)


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_matches_single_process_training(tmp_path, mode):
    """DDP, and FSDP2 with every shift layer a unit of its own: sparsity_loss of the wrapped or
    sharded model included (under FSDP2 the shifts are DTensors between forward and backward)."""
    try:
        ranks = _run_workers(tmp_path / "first", mode)
    except WorkerCrash:  # gloo aborted a process (seen once under full load in CI): once more, afresh
        ranks = _run_workers(tmp_path / "again", mode)
    reference, ref_grads, ref_penalties = train_single_process()

    # both ranks end with identical parameters (and untouched grouped-shift buffers) ...
    for name, value in ranks[0]["parameters"].items():
        assert torch.equal(value, ranks[1]["parameters"][name]), name
    for name, value in ranks[0]["shift_buffers"].items():
        assert torch.equal(value, ranks[1]["shift_buffers"][name]), name
        assert torch.equal(value, dict(reference.named_buffers())[name]), name
    # ... equal to single-process training on the global batch, which did move them
    initial = dict(make_model().named_parameters())
    for name, value in reference.named_parameters():
        _assert_close(ranks[0]["parameters"][name], value.detach(), name)
        assert not torch.equal(value, initial[name]), f"{name} did not train"

    for step in range(STEPS):
        for name, grad in ref_grads[step].items():
            # the averaged gradients are the same on both ranks, and the single-process ones
            assert torch.equal(ranks[0]["grads"][step][name], ranks[1]["grads"][step][name]), (step, name)
            _assert_close(ranks[0]["grads"][step][name], grad, f"step {step}: {name}")
        for rank in ranks:
            # sparsity_loss sees through the DDP wrapper: the penalty of the replica, the same everywhere
            assert torch.equal(rank["penalties"][step], rank["penalties_unwrapped"][step])
            assert rank["penalties"][step] > 0
            _assert_close(rank["penalties"][step], ref_penalties[step], f"step {step}: penalty")


def test_sync_batchnorm_conversion_leaves_shift_layers_alone():
    model = make_model()
    original = copy.deepcopy(model)
    shift_names = [name for name, m in model.named_modules() if isinstance(m, shiftzoo.ShiftLayer)]
    shifts_before = {name: model.get_submodule(name) for name in shift_names}
    assert len(shift_names) == 3

    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)

    assert isinstance(converted[1], nn.SyncBatchNorm)  # the BatchNorm was converted ...
    for name in shift_names:  # ... the shift layers are the very same modules
        assert converted.get_submodule(name) is shifts_before[name]
        assert type(converted.get_submodule(name)) is type(original.get_submodule(name))
    before, after = original.state_dict(), converted.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert ([(n, type(p)) for n, p in converted.named_parameters()]
            == [(n, type(p)) for n, p in original.named_parameters()])

    # still working: SyncBatchNorm synchronises only inside a process group (and then on GPUs), so
    # in one CPU process the converted model computes what the original does, gradients included
    x, _ = make_batch(0)
    for mode in ("train", "eval"):
        getattr(converted, mode)()
        getattr(original, mode)()
        out, expected = converted(x), original(x)
        assert torch.equal(out, expected), mode
        out.square().mean().backward()
        expected.square().mean().backward()
    for name in ("3.weight", "4.weight"):
        grad = converted.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0
        assert torch.equal(grad, original.get_parameter(name).grad)


if __name__ == "__main__":
    worker(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
