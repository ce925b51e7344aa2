"""BigGAN-deep (Brock et al., 2018): the class-conditional GAN of the models study, and its tiny twin.

Why our own ~150 lines and not `pytorch-pretrained-biggan` (0.1.1, the package these weights were
published with): it installs and loads a local folder offline, but it has had no release since 2019,
pulls boto3/botocore/s3transfer (37 MB of AWS SDK) for a download helper we never call, loads weights with
`strict=False` (a checkpoint missing a tensor gives noise without a word), and maps names to classes
through NLTK's WordNet, a separate download. This module is the same architecture with the same
module names, so the published `config.json` + `pytorch_model.bin` (biggan-deep-128/256/512) load here
strictly; the forward pass follows the package op for op (checked equal to it on a random model).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

WEIGHTS_NAME, CONFIG_NAME = "pytorch_model.bin", "config.json"
# Where the package fetched the published checkpoints from (DeepMind's TF-Hub weights, converted).
PUBLISHED_URL = "https://s3.amazonaws.com/models.huggingface.co/biggan/{name}-{file}"
PUBLISHED = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")


@dataclass
class BigGANConfig:
    output_dim: int = 512
    z_dim: int = 128
    class_embed_dim: int = 128  # kept for the published config.json; the embedding size is z_dim
    channel_width: int = 128
    num_classes: int = 1000
    # (upsample?, in, out) in units of channel_width, one GenBlock each
    layers: list = field(default_factory=list)
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51  # batch-norm statistics precomputed for 51 truncation values in [0, 1]


def _sn(module: nn.Module, eps: float) -> nn.Module:
    # The legacy hook, not torch.nn.utils.parametrizations: its weight_orig/_u/_v names are the checkpoint's.
    return nn.utils.spectral_norm(module, eps=eps)


class BigGANBatchNorm(nn.Module):
    """Batch norm with statistics picked by truncation; class-conditional gain and bias when conditional."""

    def __init__(self, features: int, cond_dim: int | None, n_stats: int, eps: float):
        super().__init__()
        self.eps, self.step = eps, 1.0 / (n_stats - 1)
        self.register_buffer("running_means", torch.zeros(n_stats, features))
        self.register_buffer("running_vars", torch.ones(n_stats, features))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = _sn(nn.Linear(cond_dim, features, bias=False), eps)
            self.offset = _sn(nn.Linear(cond_dim, features, bias=False), eps)
        else:
            self.weight = nn.Parameter(torch.ones(features))
            self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor, truncation: float, cond: torch.Tensor | None = None) -> torch.Tensor:
        coef, start = math.modf(truncation / self.step)
        mean, var = self.running_means[int(start)], self.running_vars[int(start)]
        if coef != 0.0:  # the reference port weights the lower entry by coef: kept, the weights expect it
            mean = mean * coef + self.running_means[int(start) + 1] * (1 - coef)
            var = var * coef + self.running_vars[int(start) + 1] * (1 - coef)
        if not self.conditional:
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, eps=self.eps)
        gain = 1 + self.scale(cond)[:, :, None, None]
        return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps) * gain + (
            self.offset(cond)[:, :, None, None]
        )


class GenBlock(nn.Module):
    """Bottleneck residual block: 1×1 down, two 3×3, 1×1 up; halves channels or doubles resolution."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, up: bool, n_stats: int, eps: float):
        super().__init__()
        mid = c_in // 4
        self.up, self.drop_channels = up, c_in != c_out
        for i, (a, b, k) in enumerate(((c_in, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, c_out, 1))):
            setattr(self, f"bn_{i}", BigGANBatchNorm(a, cond_dim, n_stats, eps))
            setattr(self, f"conv_{i}", _sn(nn.Conv2d(a, b, k, padding=k // 2), eps))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        h = x
        for i in range(4):
            h = F.relu(getattr(self, f"bn_{i}")(h, truncation, cond))
            if i == 1 and self.up:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = getattr(self, f"conv_{i}")(h)
        if self.drop_channels:
            x = x[:, : x.shape[1] // 2]
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return h + x


class SelfAttn(nn.Module):
    def __init__(self, c: int, eps: float):
        super().__init__()
        self.snconv1x1_theta = _sn(nn.Conv2d(c, c // 8, 1, bias=False), eps)
        self.snconv1x1_phi = _sn(nn.Conv2d(c, c // 8, 1, bias=False), eps)
        self.snconv1x1_g = _sn(nn.Conv2d(c, c // 2, 1, bias=False), eps)
        self.snconv1x1_o_conv = _sn(nn.Conv2d(c // 2, c, 1, bias=False), eps)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.snconv1x1_theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).view(n, c // 8, h * w // 4)
        attn = torch.softmax(torch.bmm(theta.permute(0, 2, 1), phi), dim=-1)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).view(n, c // 2, h * w // 4)
        out = torch.bmm(g, attn.permute(0, 2, 1)).view(n, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class Generator(nn.Module):
    def __init__(self, cfg: BigGANConfig):
        super().__init__()
        ch, cond_dim = cfg.channel_width, 2 * cfg.z_dim
        self.channel_width = ch
        self.gen_z = _sn(nn.Linear(cond_dim, 4 * 4 * 16 * ch), cfg.eps)
        layers: list[nn.Module] = []
        for i, (up, c_in, c_out) in enumerate(cfg.layers):
            if i == cfg.attention_layer_position:
                layers.append(SelfAttn(ch * c_in, cfg.eps))
            layers.append(GenBlock(ch * c_in, ch * c_out, cond_dim, bool(up), cfg.n_stats, cfg.eps))
        self.layers = nn.ModuleList(layers)
        self.bn = BigGANBatchNorm(ch, None, cfg.n_stats, cfg.eps)
        self.conv_to_rgb = _sn(nn.Conv2d(ch, ch, 3, padding=1), cfg.eps)

    def forward(self, cond: torch.Tensor, truncation: float) -> torch.Tensor:
        # TF's NHWC layout of the first projection, kept so the converted weights line up
        h = self.gen_z(cond).view(-1, 4, 4, 16 * self.channel_width).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            h = layer(h, cond, truncation) if isinstance(layer, GenBlock) else layer(h)
        h = self.conv_to_rgb(F.relu(self.bn(h, truncation)))
        return torch.tanh(h[:, :3])


class BigGAN(nn.Module):
    def __init__(self, config: BigGANConfig):
        super().__init__()
        self.config = config
        self.embeddings = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Generator(config)

    def forward(self, z: torch.Tensor, class_vector: torch.Tensor, truncation: float) -> torch.Tensor:
        if not 0 < truncation <= 1:
            raise ValueError(f"truncation must be in (0, 1], got {truncation}")
        return self.generator(torch.cat((z, self.embeddings(class_vector)), dim=1), truncation)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BigGAN:
        """config.json + pytorch_model.bin, as published; every tensor must be there (strict)."""
        folder = Path(folder)
        config = BigGANConfig(**json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")))
        model = cls(config)
        state = torch.load(folder / WEIGHTS_NAME, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def save_pretrained(self, folder: str | Path) -> None:
        """The published layout, so that a twin goes through the same from_pretrained as the real weights."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2), encoding="utf-8")
        torch.save(self.state_dict(), folder / WEIGHTS_NAME)


def truncated_noise(seed: int, dim: int, truncation: float) -> torch.Tensor:
    """z ~ N(0, 1) cut to [-2, 2], times truncation (the BigGAN paper's truncation trick), [1, dim]."""
    z = torch.empty(1, dim)
    torch.nn.init.trunc_normal_(z, a=-2.0, b=2.0, generator=torch.Generator().manual_seed(seed))
    return truncation * z


@torch.inference_mode()
def generate(model: BigGAN, class_index: int, seed: int, truncation: float) -> Image.Image:
    """One picture of ImageNet class `class_index`, from CPU noise (the same picture on any device)."""
    device, dtype = model.embeddings.weight.device, model.embeddings.weight.dtype
    z = truncated_noise(seed, model.config.z_dim, truncation).to(device, dtype)
    onehot = F.one_hot(torch.tensor([class_index]), model.config.num_classes).to(device, dtype)
    out = model(z, onehot, truncation)[0].float().clamp(-1, 1)
    pixels = ((out + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(pixels)
