"""GPU readiness: the CUDA-family kernels (forced on the CPU), and tests that need a CUDA device.

The first group always runs: it forces :class:`gatorch.functional.KernelPolicy`
``device="cuda"`` on CPU tensors, so the kernels a GPU would run are checked against the
dense reference and the CPU kernels here. The second group is marked ``cuda`` and skips
cleanly without a GPU (``pytest -m cuda`` selects it on a machine that has one):
equivariance on the device, compiled against eager, bf16 autocast, and a DDP step (NCCL).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gatorch import PGA3, STA, Algebra
from gatorch.functional import KernelPolicy, kernel_policy
from gatorch.nets import GATr
from gatorch.testing import assert_layer_equivariant, random_versors
from tests.conftest import small_gatr

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")


def _net(alg: Algebra, **options) -> GATr:
    return small_gatr(alg, **options)


# -- the CUDA-family kernels, on the CPU ------------------------------------------------------------
@pytest.mark.parametrize("alg", [PGA3, STA, Algebra(4, 1)], ids=["PGA3", "STA", "CGA3"])
@pytest.mark.parametrize("items", [5, 9000])  # the CPU family switches kernels at 8192 items
def test_cuda_family_products_match_dense(alg, items):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(items, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(items, alg.dim, generator=g, dtype=torch.float64, requires_grad=True)
    ref = alg.gp_dense(x, y)
    gref = torch.autograd.grad(ref.square().sum(), (x, y))
    with kernel_policy("cuda"):
        out = alg.gp(x, y)
        grads = torch.autograd.grad(out.square().sum(), (x, y))
    torch.testing.assert_close(out, ref, atol=1e-11, rtol=1e-11)
    for a, b in zip(grads, gref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_cuda_family_gatr_matches_cpu_family():
    torch.manual_seed(0)
    net = _net(PGA3, attention={"distance_features": True}).double()
    mv = torch.randn(2, 7, 2, 16, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 7, 3, dtype=torch.float64)
    outs, grads = [], []
    for family in ("cpu", "cuda"):
        with kernel_policy(family):
            out = net(mv, s)
            (g,) = torch.autograd.grad(out[0].square().sum() + out[1].square().sum(), mv)
        outs.append(out)
        grads.append(g)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-11, rtol=1e-11)


def test_policy_rejects_unknown_values():
    with pytest.raises(ValueError, match="device must be one of"):
        KernelPolicy(device="tpu")
    with pytest.raises(ValueError, match="compiled"):
        KernelPolicy(compiled="dense")
    with pytest.raises(ValueError, match="device must be one of"):
        with kernel_policy("gpu"):
            pass
    with pytest.raises(TypeError, match="KernelPolicy"):
        with kernel_policy(3):  # type: ignore[arg-type]
            pass


# -- on a CUDA device -------------------------------------------------------------------------------
@pytest.mark.cuda
@needs_cuda
def test_gatr_equivariant_on_cuda():
    torch.manual_seed(0)
    net = _net(PGA3, attention={"distance_features": True}).double().cuda()
    w = random_versors(PGA3, 4, seed=3).cuda()
    mv = torch.randn(4, 6, 2, 16, dtype=torch.float64, device="cuda")
    s = torch.randn(4, 6, 3, dtype=torch.float64, device="cuda")
    assert_layer_equivariant(net, PGA3, mv, s, versors=w, batched=True, atol=1e-8, rtol=1e-8)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("products", ["fused", "opaque"])
def test_gatr_compiled_matches_eager_on_cuda(products):
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = _net(STA).cuda()
    mv = torch.randn(4, 32, 2, 16, device="cuda", requires_grad=True)
    s = torch.randn(4, 32, 3, device="cuda")
    with kernel_policy(KernelPolicy(compiled=products)):
        out_c = torch.compile(net, fullgraph=True)(mv, s)
    (g_c,) = torch.autograd.grad(out_c[0].square().sum(), mv)
    out_e = net(mv, s)
    (g_e,) = torch.autograd.grad(out_e[0].square().sum(), mv)
    torch.testing.assert_close(out_c, out_e, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(g_c, g_e, atol=1e-3, rtol=1e-3)


@pytest.mark.cuda
@needs_cuda
def test_gatr_bf16_autocast_on_cuda():
    torch.manual_seed(0)
    net = _net(PGA3, attention={"distance_features": True}).cuda()
    mv = torch.randn(4, 64, 2, 16, device="cuda", requires_grad=True)
    s = torch.randn(4, 64, 3, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, out_s = net(mv, s)
        compiled, _ = torch.compile(net, fullgraph=True)(mv, s)
    (out.float().square().mean() + out_s.float().square().mean()).backward()
    assert torch.isfinite(out.float()).all() and torch.isfinite(compiled.float()).all()
    assert mv.grad is not None and torch.isfinite(mv.grad).all()
    ref, _ = net(mv, s)
    scale = ref.abs().max().item() + 1.0
    torch.testing.assert_close(out.float(), ref, atol=5e-2 * scale, rtol=5e-2)


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.cuda.set_device(rank % torch.cuda.device_count())
    backend = "nccl" if torch.cuda.device_count() >= world else "gloo"
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        net = _net(PGA3, attention={"distance_features": True}).cuda()
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        g = torch.Generator(device="cuda").manual_seed(100 + rank)
        mv = torch.randn(2, 6, 2, 16, generator=g, device="cuda")
        s = torch.randn(2, 6, 3, generator=g, device="cuda")
        for _ in range(2):
            opt.zero_grad()
            out, out_s = ddp(mv, s)
            (out.square().mean() + out_s.square().mean()).backward()
            opt.step()
        flat = torch.cat([p.detach().flatten() for p in net.parameters()]).cpu()
        torch.save(flat, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip teardown: see tests/test_distributed.py (gloo reducer teardown deadlock)


@pytest.mark.cuda
@needs_cuda
def test_ddp_step_on_cuda(tmp_path: Path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    p0, p1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.isfinite(p0).all()
    torch.testing.assert_close(p0, p1)
