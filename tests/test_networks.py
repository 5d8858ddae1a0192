"""The registered networks: shapes, ranges, spectral norm, self-attention, gradients,
stacking, and save/load through core.serialization."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

from usgan.core import ConfigError, ShapeMismatchError, UsganError
from usgan.core.factory import create_discriminator, create_generator, get_spec, list_models
from usgan.core.layers import UP_MODES, MinibatchStd, SelfAttention
from usgan.core.noise import pixel_noise
from usgan.core.serialization import META_KEY, load_network, read_arch, save_network
from usgan.core.stacking import StackedGenerator, check_stackable
from usgan.core.testing import check_stage1, check_stage2
from usgan.plugins.stack import NOISE_INIT

BUILTIN_STAGE1 = ["dcgan", "dcgan-sn", "dcgan-sn-sa"]
B = 2
WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def _z(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _image(c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(B, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _in_range(x: torch.Tensor) -> bool:
    x = x.detach()
    return bool(torch.isfinite(x).all()) and -1 <= float(x.min()) and float(x.max()) <= 1


def _run_stage1(name: str, **config: object) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = create_generator(name, "stage1", **config).eval()
    d = create_discriminator(name, "stage1", **config).eval()
    with torch.no_grad():
        x = g(_z(B, g.z_dim))
        logits = d(x)
    return g, x, logits


def _run_stage2(name: str, **config: object) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = create_generator(name, "stage2", **config).eval()
    d = create_discriminator(name, "stage2", **config).eval()
    with torch.no_grad():
        y = g(_image(g.in_channels, g.in_size), _z(B, g.z_dim))
        logits = d(y)
    return g, y, logits


# --- shapes and ranges ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list_models("stage1"))
def test_stage1_default_shapes(name: str) -> None:
    g, x, logits = _run_stage1(name)
    assert tuple(x.shape) == (B, g.out_channels, g.out_size, g.out_size)
    assert _in_range(x)
    assert tuple(logits.shape) == (B,)
    if get_spec(name).plugin == "usgan-dcgan":  # the paper's Stage-I: 64x64 grayscale, z 100
        assert (g.z_dim, g.out_channels, g.out_size) == (100, 1, 64)


@pytest.mark.parametrize("name", BUILTIN_STAGE1)
@pytest.mark.parametrize("size", [32, 128])
def test_stage1_other_sizes(name: str, size: int) -> None:
    _, x, logits = _run_stage1(name, size=size)
    assert tuple(x.shape) == (B, 1, size, size) and _in_range(x)
    assert tuple(logits.shape) == (B,)


def test_stage1_three_channels() -> None:
    _, x, logits = _run_stage1("dcgan", channels=3, z_dim=16)
    assert tuple(x.shape) == (B, 3, 64, 64) and tuple(logits.shape) == (B,)


@pytest.mark.parametrize("name", list_models("stage2"))
def test_stage2_default_shapes(name: str) -> None:
    g, y, logits = _run_stage2(name)
    assert tuple(y.shape) == (B, g.out_channels, g.out_size, g.out_size)
    assert _in_range(y)
    assert tuple(logits.shape) == (B,)
    if name == "stack":
        assert (g.in_channels, g.in_size, g.out_size, g.z_dim) == (1, 64, 256, 100)


@pytest.mark.parametrize("in_size", [32, 128])
@pytest.mark.parametrize("z_join", ["tile", "project"])
def test_stack_other_sizes(in_size: int, z_join: str) -> None:
    _, y, logits = _run_stage2("stack", in_size=in_size, z_join=z_join)
    assert tuple(y.shape) == (B, 1, 256, 256) and _in_range(y)
    assert tuple(logits.shape) == (B,)


def test_stack_skips_at_every_encoder_resolution() -> None:
    """Decoder blocks at the encoder's sizes take the skip; beyond in_size they do not."""
    g = create_generator("stack", in_size=32, upsample="transposed")
    seen: list[tuple[int, int]] = []
    hooks = [block.register_forward_pre_hook(lambda m, args: seen.append(
        (args[0].shape[1], args[0].shape[-1]))) for block in g.decoder]
    with torch.no_grad():
        g.eval()(_image(1, 32), _z(B, g.z_dim))
    for h in hooks:
        h.remove()
    enc = [block[0].out_channels for block in g.encoder]  # widths at 32, 16, 8
    assert [s for _, s in seen] == [4, 8, 16, 32, 64, 128]
    assert seen[0][0] == enc[-1] + g.z_dim  # bottleneck + tiled z
    dec = [block[0].out_channels for block in g.decoder]
    assert seen[1][0] == dec[0] + enc[-1]  # 8x8: decoder + encoder features
    assert seen[3][0] == dec[2] + enc[0]  # 32x32 (= in_size): skip
    assert seen[4][0] == dec[3]  # 64x64 > in_size: no skip


@pytest.mark.parametrize("floor", [16, 32])
def test_stack_decoder_floor_beyond_in_size(floor: int) -> None:
    """Beyond in_size the decoder halves its width down to ``dec_min_width``, not below."""
    g = create_generator("stack", dec_min_width=floor)  # width 32, in_size 64
    widths = [_out_channels(block) for block in g.decoder]  # at 8, 16, ..., 256 px
    assert widths[:4] == [256, 128, 64, 32]  # the encoder's widths up to in_size
    assert widths[4:] == [floor, floor]  # 128 and 256 px (16 and 8 by the halving)
    assert tuple(g(_image(1, 64), _z(B, g.z_dim)).shape) == (B, 1, 256, 256)


def _out_channels(block: nn.Module) -> int:
    return [m for m in block if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)][-1].out_channels


@pytest.mark.parametrize("name, config, match", [
    ("dcgan", {"size": 48}, "power of two"),
    ("dcgan", {"size": 4}, "at least 8"),
    ("dcgan-sn-sa", {"attn_res": 64}, "attn_res"),
    ("dcgan-sn-sa", {"size": 16}, "attn_res=16"),  # no 16x16 feature map at size 16
])
def test_stage1_bad_config_is_a_config_error(name: str, config: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_generator(name, **config)


def test_stage2_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="z_join"):
        create_generator("stack", z_join="add")
    with pytest.raises(ConfigError, match="in_size"):
        create_generator("stack", in_size=512)


# --- spectral norm -------------------------------------------------------------------------


def _weighted(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, WEIGHTED)]


@pytest.mark.parametrize("name", ["dcgan-sn", "dcgan-sn-sa"])
def test_spectral_norm_on_every_layer(name: str) -> None:
    for net in (create_generator(name), create_discriminator(name)):
        layers = _weighted(net)
        assert layers
        missing = [type(m).__name__ for m in layers
                   if not parametrize.is_parametrized(m, "weight")]
        assert not missing, f"{name} {type(net).__name__}: no spectral norm on {missing}"
    # BatchNorm stays in G, and in D both keep DCGAN's (the paper's DCGAN + SN, measured
    # better than SN-GAN's D without it on 2026-12-06); d_batchnorm=False drops it.
    assert any(isinstance(m, nn.BatchNorm2d) for m in create_generator(name).modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in create_discriminator(name).modules())
    assert not any(isinstance(m, nn.BatchNorm2d)
                   for m in create_discriminator(name, d_batchnorm=False).modules())


def test_no_spectral_norm_in_plain_dcgan_or_stack() -> None:
    for net in (create_generator("dcgan"), create_discriminator("dcgan"),
                create_generator("stack"), create_discriminator("stack")):
        assert not any(parametrize.is_parametrized(m) for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in create_discriminator("dcgan").modules())


def test_g_spectral_norm_false_keeps_it_in_d_only() -> None:
    """``g_spectral_norm=False``: no spectral norm in G, still on every layer of D; True
    puts it in dcgan's G alone."""
    g = create_generator("dcgan-sn", g_spectral_norm=False)
    d = create_discriminator("dcgan-sn", g_spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in g.modules())
    assert all(parametrize.is_parametrized(m, "weight") for m in _weighted(d))
    plain_g = create_generator("dcgan", g_spectral_norm=True)
    assert all(parametrize.is_parametrized(m, "weight") for m in _weighted(plain_g))
    assert not any(parametrize.is_parametrized(m)
                   for m in create_discriminator("dcgan", g_spectral_norm=True).modules())


def test_spectral_norm_bounds_the_weight() -> None:
    """The effective weight of an SN layer has spectral norm ~1 after power iterations."""
    d = create_discriminator("dcgan-sn", d_width=8).train()
    x = _image(1, 64)
    with torch.no_grad():
        for _ in range(30):
            d(x)
    conv = _weighted(d)[1]
    w = conv.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


# --- self-attention ------------------------------------------------------------------------


def _attention_sizes(net: nn.Module, *inputs: torch.Tensor) -> list[int]:
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
             for m in net.modules() if isinstance(m, SelfAttention)]
    with torch.no_grad():
        net.eval()(*inputs)
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("attn_res", [4, 8, 16, 32])
def test_attention_at_the_configured_resolution(attn_res: int) -> None:
    g = create_generator("dcgan-sn-sa", attn_res=attn_res)
    d = create_discriminator("dcgan-sn-sa", attn_res=attn_res)
    assert _attention_sizes(g, _z(B, 100)) == [attn_res]
    assert _attention_sizes(d, _image(1, 64)) == [attn_res]


def test_default_attention_at_16_and_none_without_it() -> None:
    assert get_spec("dcgan-sn-sa").defaults["attn_res"] == 16
    assert _attention_sizes(create_generator("dcgan-sn-sa"), _z(B, 100)) == [16]
    for name in ("dcgan", "dcgan-sn"):
        for net in (create_generator(name), create_discriminator(name)):
            assert not any(isinstance(m, SelfAttention) for m in net.modules())


def _attn(net: nn.Module) -> SelfAttention:
    (attn,) = [m for m in net.modules() if isinstance(m, SelfAttention)]
    return attn


def test_attention_is_used() -> None:
    """gamma starts at 0 (identity); a nonzero gamma changes G's output and D's logits."""
    torch.manual_seed(0)
    small = {"g_width": 16, "d_width": 16}
    g = create_generator("dcgan-sn-sa", **small).eval()
    d = create_discriminator("dcgan-sn-sa", **small).eval()
    z, x = _z(B, 100), _image(1, 64)
    with torch.no_grad():
        assert _attn(g).gamma.item() == 0 and _attn(d).gamma.item() == 0
        before_g, before_d = g(z), d(x)
        _attn(g).gamma.fill_(0.5)
        _attn(d).gamma.fill_(0.5)
        assert not torch.allclose(g(z), before_g)
        assert not torch.allclose(d(x), before_d)


def test_attention_gradients_reach_qkv_once_gamma_is_nonzero() -> None:
    torch.manual_seed(0)
    small = {"g_width": 16, "d_width": 16}
    for net, inp in ((create_generator("dcgan-sn-sa", **small), _z(B, 100)),
                     (create_discriminator("dcgan-sn-sa", **small), _image(1, 64))):
        attn = _attn(net)
        net.train()(inp).square().mean().backward()
        # With gamma == 0 the attention output is multiplied by 0: q/k/v get zero gradient,
        # gamma itself gets a gradient (so it can move away from 0).
        assert attn.gamma.grad is not None and attn.gamma.grad.abs().item() > 0
        for p in (*attn.query.parameters(), *attn.key.parameters(), *attn.value.parameters()):
            assert p.grad is None or not p.grad.any()
        net.zero_grad()
        with torch.no_grad():
            attn.gamma.fill_(0.5)
        net(inp).square().mean().backward()
        for part in (attn.query, attn.key, attn.value):
            grads = [p.grad for p in part.parameters()]
            assert all(gr is not None and gr.abs().sum() > 0 for gr in grads), part


# --- gradients reach every parameter --------------------------------------------------------


def _all_networks() -> list[tuple[str, str]]:
    return [(n, role) for n in list_models() for role in ("generator", "discriminator")]


@pytest.mark.parametrize("name, role", _all_networks())
def test_gradients_reach_every_parameter(name: str, role: str) -> None:
    torch.manual_seed(0)
    spec = get_spec(name)
    net = (create_generator if role == "generator" else create_discriminator)(name).train()
    with torch.no_grad():  # gamma = 0 blocks q/k/v gradients by design
        for m in net.modules():
            if isinstance(m, SelfAttention):
                m.gamma.fill_(0.5)
    if role == "discriminator":
        out = net(_image(net.in_channels, net.in_size))
    elif spec.kind == "stage1":
        out = net(_z(B, net.z_dim))
    else:
        out = net(_image(net.in_channels, net.in_size), _z(B, net.z_dim))
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead, f"{name} {role}: no gradient reaches {dead}"


# --- stacking ------------------------------------------------------------------------------


def _stack_for(stage1: nn.Module) -> nn.Module:
    return create_generator("stack", in_size=stage1.out_size, in_channels=stage1.out_channels,
                            out_channels=stage1.out_channels)


@pytest.mark.parametrize("name", list_models("stage1"))
def test_every_stage1_stacks_with_stack(name: str) -> None:
    torch.manual_seed(0)
    s1 = create_generator(name)
    s2 = _stack_for(s1)
    wrapper = StackedGenerator(s1, s2)
    assert not any(p.requires_grad for p in s1.parameters())
    assert all(p.requires_grad for p in s2.parameters())
    assert not s1.training

    wrapper.train()
    assert wrapper.training and s2.training and not s1.training
    assert not any(m.training for m in s1.modules())
    buffers = {k: v.clone() for k, v in s1.named_buffers()}
    z1, z2 = wrapper.sample_z(B, generator=torch.Generator().manual_seed(0))
    assert tuple(z1.shape) == (B, s1.z_dim) and tuple(z2.shape) == (B, s2.z_dim)
    mid, high = wrapper(z1, z2)
    assert tuple(mid.shape) == (B, s1.out_channels, s1.out_size, s1.out_size)
    assert tuple(high.shape) == (B, s1.out_channels, 256, 256)
    assert _in_range(mid) and _in_range(high)
    assert not mid.requires_grad and high.requires_grad
    # Stage-I's BatchNorm running stats (and spectral-norm vectors) did not move.
    for k, v in s1.named_buffers():
        assert torch.equal(v, buffers[k]), f"Stage-I buffer {k} changed"
    high.mean().backward()
    assert all(p.grad is None for p in s1.parameters())
    assert any(p.grad is not None for p in s2.parameters())

    # Separate state_dicts: each stage's own dict loads into a fresh network of its kind.
    state = wrapper.state_dict()
    assert {k.split(".", 1)[0] for k in state} == {"stage1", "stage2"}
    assert set(s1.state_dict()) == {k[len("stage1."):] for k in state if k.startswith("stage1.")}
    create_generator(name).load_state_dict(s1.state_dict(), strict=True)
    _stack_for(s1).load_state_dict(s2.state_dict(), strict=True)

    wrapper.eval()
    assert not s2.training and not s1.training


def test_stack_mid_equals_stage1_alone() -> None:
    torch.manual_seed(0)
    s1 = create_generator("dcgan")
    wrapper = StackedGenerator(s1, create_generator("stack"))
    z1, z2 = wrapper.sample_z(B)
    with torch.no_grad():
        mid, _ = wrapper.train()(z1, z2)
        assert torch.equal(mid, s1.eval()(z1))


def test_stack_with_other_stage1_sizes() -> None:
    for size in (32, 128):
        s1 = create_generator("dcgan-sn", size=size)
        wrapper = StackedGenerator(s1, create_generator("stack", in_size=size)).eval()
        with torch.no_grad():
            mid, high = wrapper(*wrapper.sample_z(B))
        assert tuple(mid.shape) == (B, 1, size, size)
        assert tuple(high.shape) == (B, 1, 256, 256)


def test_stack_size_mismatch() -> None:
    with pytest.raises(ShapeMismatchError) as err:
        StackedGenerator(create_generator("dcgan"), create_generator("stack", in_size=32))
    msg = str(err.value)
    assert "1x64x64" in msg and "1x32x32" in msg and "in_size=64" in msg
    assert "\n" not in msg


def test_stack_channel_mismatch() -> None:
    with pytest.raises(ShapeMismatchError, match="in_channels=3"):
        check_stackable(create_generator("dcgan", channels=3), create_generator("stack"))


def test_stack_needs_declared_attributes() -> None:
    with pytest.raises(ShapeMismatchError, match="does not declare z_dim"):
        check_stackable(nn.Identity(), create_generator("stack"))


# --- serialization -------------------------------------------------------------------------


@pytest.mark.parametrize("name, role, config", [
    ("dcgan", "generator", {}),
    ("dcgan-sn-sa", "generator", {"size": 32, "attn_res": 8}),
    ("dcgan-sn-sa", "discriminator", {"size": 32, "attn_res": 16}),
    ("stack", "generator", {"in_size": 32, "z_join": "project", "width": 16}),
    ("dcgan-sn", "discriminator", {"d_mbstd": True, "d_width": 16}),
    ("stack", "generator", {"in_size": 32, "upsample": "bilinear", "width": 16}),
    ("stack", "generator", {"in_size": 32, "noise": True, "width": 16}),
    ("stack", "discriminator", {"d_patch": 16, "d_width": 8}),
])
def test_save_load_round_trip(tmp_path, name: str, role: str, config: dict) -> None:
    torch.manual_seed(0)
    make = create_generator if role == "generator" else create_discriminator
    net = make(name, **config).train()
    spec = get_spec(name)
    if role == "discriminator":
        inputs: tuple[torch.Tensor, ...] = (_image(net.in_channels, net.in_size),)
    elif spec.kind == "stage1":
        inputs = (_z(B, net.z_dim),)
    else:
        inputs = (_image(net.in_channels, net.in_size), _z(B, net.z_dim))
    with torch.no_grad():
        for m in net.modules():  # move gammas and BN stats / SN vectors away from init
            if isinstance(m, SelfAttention):
                m.gamma.fill_(0.3)
        net(*inputs)
    path = save_network(net.eval(), tmp_path / "net.safetensors")
    arch = read_arch(path)
    assert arch == {"name": name, "kind": spec.kind, "role": role,
                    "config": spec.resolve(config)}
    json.dumps(arch)
    loaded = load_network(path).eval()
    assert type(loaded) is type(net)
    assert loaded.usgan_arch == net.usgan_arch
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), net(*inputs))
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_wrong_weights_is_a_one_line_error(tmp_path) -> None:
    small = create_generator("dcgan", g_width=8)
    path = tmp_path / "wrong.safetensors"
    arch = {**small.usgan_arch, "config": get_spec("dcgan").resolve()}  # claims the default
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path),
              metadata={META_KEY: json.dumps(arch)})
    with pytest.raises(UsganError) as err:
        load_network(path)
    msg = str(err.value)
    assert "weights do not fit dcgan generator" in msg and "\n" not in msg


def test_load_non_safetensors_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(UsganError, match="not a readable safetensors file"):
        load_network(path)
    with pytest.raises(UsganError, match="no such file"):
        load_network(tmp_path / "missing.safetensors")
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(plain))
    with pytest.raises(UsganError, match="no usgan architecture metadata"):
        load_network(plain)


def test_save_needs_a_registry_built_module(tmp_path) -> None:
    with pytest.raises(UsganError, match="not built through the usgan registry"):
        save_network(nn.Linear(2, 2), tmp_path / "x.safetensors")


# --- the conformance helpers on the built-ins ------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_STAGE1)
def test_check_stage1_builtin(name: str) -> None:
    check_stage1(name)


def test_check_stage2_stack() -> None:
    check_stage2("stack")
    check_stage2("stack", {"noise": True, "width": 16})


def test_stack_residual_refines_the_upsampled_stage1_image() -> None:
    g = create_generator("stack", residual=True, width=8, max_width=32).eval()
    torch.nn.init.zeros_(g.to_image.weight)
    torch.nn.init.zeros_(g.to_image.bias)
    x = torch.rand(2, 1, 64, 64) * 1.6 - 0.8
    with torch.no_grad():
        y = g(x, torch.randn(2, g.z_dim))
    up = torch.nn.functional.interpolate(x, size=256, mode="bilinear", align_corners=False)
    assert y.shape == (2, 1, 256, 256)
    assert torch.allclose(y, up, atol=1e-5)


def test_pixel_noise_is_a_function_of_each_samples_z() -> None:
    z = torch.randn(5, 16)
    maps = pixel_noise(z, 32, salt=3)
    assert maps.shape == (5, 1, 32, 32)
    assert torch.equal(pixel_noise(z[2:4], 32, salt=3), maps[2:4])  # batch-independent
    assert not torch.equal(pixel_noise(z, 32, salt=4), maps)  # layers differ
    assert not torch.equal(maps[0], maps[1])
    assert abs(float(maps.std()) - 1) < 0.05


def test_stack_noise_reaches_the_output_and_stays_seeded() -> None:
    cfg = {"in_size": 32, "width": 16, "max_width": 64}
    g = create_generator("stack", noise=True, **cfg).eval()
    # strengths only beyond in_size (64, 128, 256), one per channel, starting at NOISE_INIT
    assert sorted(g.noise_strength) == ["3", "4", "5"]
    assert all(torch.all(p == NOISE_INIT) for p in g.noise_strength.values())
    x, z = _image(1, 32), _z(B, g.z_dim)
    with torch.no_grad():
        y = g(x, z)
        assert torch.allclose(g(x[:1], z[:1]), y[:1], atol=1e-5)  # whatever the batch
        for p in g.noise_strength.values():
            p.zero_()
        y0 = g(x, z)
    plain = create_generator("stack", **cfg).eval()
    plain.load_state_dict({k: v for k, v in g.state_dict().items()
                           if not k.startswith("noise_strength")})
    with torch.no_grad():
        assert torch.equal(plain(x, z), y0)  # zero strength = the network without noise
    assert not torch.allclose(y, y0)
    assert not any(k.startswith("noise_strength") for k in plain.state_dict())  # default off
    meta = pixel_noise(torch.empty(3, 8, device="meta"), 16)  # shape-only passes
    assert meta.shape == (3, 1, 16, 16) and meta.device.type == "meta"


# --- options: minibatch std in D (d_mbstd), resize-convolution in Stage-II (upsample) --------


def _mbstd(x: torch.Tensor) -> torch.Tensor:
    """The extra channel MinibatchStd appends, one value per sample (checked constant)."""
    out = MinibatchStd()(x)
    assert tuple(out.shape) == (x.shape[0], x.shape[1] + 1, *x.shape[2:])
    assert torch.equal(out[:, :-1], x)
    extra = out[:, -1]
    assert torch.equal(extra, extra[:, :1, :1].expand_as(extra))  # constant over H, W
    return extra[:, 0, 0]


def test_minibatch_std_values() -> None:
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = (x.var(0, unbiased=False) + 1e-8).sqrt().mean()  # one group of 4
    assert torch.allclose(_mbstd(x), ref.expand(4))
    same = _mbstd(x[:1].expand(4, 3, 8, 8))
    assert same.max().item() < 1e-3  # identical images: sqrt(eps) = 1e-4, i.e. ~0
    # N=6, group size 4 -> groups of 3: sample n is in group n mod 2.
    x6 = torch.randn(6, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    extra = _mbstd(x6)
    for j in (0, 1):
        ref = (x6[j::2].var(0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(extra[j::2], ref.expand(3))


@pytest.mark.parametrize("n, diverse", [(1, False), (2, True), (3, True), (5, False), (8, True)])
def test_minibatch_std_any_batch_size(n: int, diverse: bool) -> None:
    """No divisor of n in 2..4 (n=1, 5): groups of one, the channel is ~0 (no information)."""
    extra = _mbstd(torch.randn(n, 2, 4, 4, generator=torch.Generator().manual_seed(n)))
    assert torch.isfinite(extra).all()
    assert bool((extra > 0.1).all()) if diverse else extra.max().item() < 1e-3


def test_minibatch_std_keeps_bf16() -> None:
    x = torch.randn(4, 2, 4, 4).bfloat16()
    out = MinibatchStd()(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


@pytest.mark.parametrize("name", ["dcgan", "dcgan-sn-sa"])
def test_discriminator_with_minibatch_std(name: str) -> None:
    torch.manual_seed(0)
    d = create_discriminator(name, d_mbstd=True, d_width=16).eval()
    layers = list(d.net)
    assert isinstance(layers[-2], MinibatchStd) and layers[-1].in_channels == 8 * 16 + 1
    if get_spec(name).defaults["spectral_norm"]:
        assert parametrize.is_parametrized(layers[-1], "weight")
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert tuple(d(x).shape) == (5,)
        # Sample 0's logit depends on the rest of its group (in eval, nothing else couples
        # samples: without d_mbstd it would stay bit-identical).
        x4 = x[:4].clone()
        before = d(x4)[0]
        x4[1:] = x4[0]
        assert not torch.equal(d(x4)[0], before)
    off = create_discriminator(name, d_width=16)
    assert not any(isinstance(m, MinibatchStd) for m in off.modules())


def test_stack_discriminator_passes_minibatch_std() -> None:
    d = create_discriminator("stack", d_mbstd=True, d_width=8)
    assert any(isinstance(m, MinibatchStd) for m in d.modules())
    with torch.no_grad():
        assert tuple(d.eval()(_image(1, 256)).shape) == (B,)


def test_patch_discriminator_scores_patches() -> None:
    """d_patch=16 at 256 px: a 16x16 map of scores, each from a patch; the logit is their mean."""
    torch.manual_seed(0)
    d = create_discriminator("stack", d_patch=16, d_width=8).eval()
    halvings = [m for m in d.net if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert d.net[-1].kernel_size == (3, 3) and len(halvings) == 4  # 256 -> 16
    x = _image(1, 256)
    with torch.no_grad():
        scores = d.net(x)
        assert tuple(scores.shape) == (B, 1, 16, 16)
        torch.testing.assert_close(d(x), scores.flatten(1).mean(1))
        y = x.clone()
        y[:, :, :8, :8] = -y[:, :, :8, :8]  # change the top-left corner only
        changed = (d.net(y) != scores)[0, 0]
    assert changed[:3, :3].any() and not changed[3:].any() and not changed[:, 3:].any()


@pytest.mark.parametrize("name, config", [
    ("stack", {"d_patch": 12}), ("stack", {"d_patch": 2}), ("stack", {"d_patch": 256}),
    ("dcgan-sn-sa", {"d_patch": 32}),  # D would stop above its attention at 16x16
])
def test_patch_discriminator_refuses_bad_sizes(name: str, config: dict) -> None:
    with pytest.raises(ConfigError, match="d_patch"):
        create_discriminator(name, **config)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_stack_resize_convolution(mode: str) -> None:
    g = create_generator("stack", upsample=mode, in_size=32, width=16, max_width=64).eval()
    with torch.no_grad():
        y = g(_image(1, 32), _z(B, g.z_dim))
    assert tuple(y.shape) == (B, 1, 256, 256) and _in_range(y)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.decoder.modules())
    assert sum(isinstance(m, nn.Upsample) for m in g.decoder.modules()) == len(g.decoder)
    assert get_spec("stack").defaults["upsample"] == "bilinear"  # docs/quality.md


def test_stack_unknown_upsample_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="upsample") as err:
        create_generator("stack", upsample="pixelshuffle")
    msg = str(err.value)
    assert "\n" not in msg and "pixelshuffle" in msg and all(m in msg for m in UP_MODES)
