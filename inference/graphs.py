"""The UNet, VAE decoder and text encoder as the pipelines call them: replayed as CUDA graphs, compiled where it pays.

Why graphs: on an H100 an eager SD 1.5 step at batch 8 took 32 ms of GPU time and 28 ms just to launch its
~1000 kernels from Python, so the loop ran at the host's pace; a graph replay launches in 0.3 ms
(H200: 49 ms eager, 28.5 ms graphed). `GraphedUNet` captures one CUDA graph per input shape; the worker
prepares every (bucket, batch) shape when it starts (inference.warmup), never in front of a user.

Why compile only some shapes (ARTBOOTH_COMPILE=1): torch.compile cut the graphed step at batch 8 from 28
to 20 ms and the VAE decode of four from 62 to 35 ms on the H200, but with dynamic shapes its compile did
not finish in 7 minutes, and a static compile costs about 60 s per new shape cold, 8-10 s with a warm
cache (scripts/compile_probe.py, docs/benchmarks.md). So shapes are compiled statically, and only:

- while the worker prepares its shapes (`preparing()`, inference.warmup): nothing compiles in front of a
  user; a shape first seen later runs graphed but uncompiled;
- the shapes that carry the work: the UNet at batch >= 8 (an album's four pictures with guidance: 18 of
  its 21 steps) and the VAE decoding an album's slice (`decode_slice`), one of each per shape bucket.

The artefacts live under DATA_DIR/compile-cache (inductor + triton caches), so a restart, after a crash
too, loads kernels instead of compiling them. Graphs are skipped while a LoRA layer is switched on (peft
layers run eager); if the UNet's module tree changes (a training adapter attached), the compiled forward
is dropped for the eager one rather than recompiled. ARTBOOTH_COMPILE / ARTBOOTH_CUDA_GRAPHS turn either
part on or off.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

import torch

log = logging.getLogger(__name__)
COMPILED_UNET_BATCH = 8  # the UNet shapes worth a compile: four pictures with guidance and up
# Pixels per VAE decoder call: two pictures at any bucket (four at the tiny models' size). An eager decode
# holds about 0.75 GiB of activations per 512x512 picture in fp16 (H200: four 512x512 pictures +2.0 GiB,
# two 768x512 +1.5, four 768x512 +3.0), and that transient decides the worker's peak: with /pose's
# ControlNet and fast mode's UNet resident it reached 10.2 GiB reserved against 10 allowed with four.
DECODE_SLICE_PIXELS = 2 * 768 * 512


def decode_slice(latents: torch.Tensor, vae_scale_factor: int = 8) -> int:
    """How many pictures of these latents' size one decoder call takes (4, 2 or 1)."""
    pixels = latents.shape[-2] * latents.shape[-1] * vae_scale_factor**2
    return next((n for n in (4, 2) if n * pixels <= DECODE_SLICE_PIXELS), 1)


_preparing = contextvars.ContextVar("artbooth_preparing_shapes", default=False)


@contextlib.contextmanager
def preparing() -> Iterator[None]:
    """New shapes seen inside the block may be compiled (the worker's start); outside it they are not."""
    token = _preparing.set(True)
    try:
        yield
    finally:
        _preparing.reset(token)


def _lora_enabled(unet: torch.nn.Module) -> bool:
    """Is any LoRA layer of the UNet switched on (enabled, with an active adapter, not merged away)?"""
    return _module_state(unet)[1]


def _module_state(unet: torch.nn.Module) -> tuple[int, bool]:
    """(module count, any LoRA layer on), in one walk over the UNet's modules."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    count, lora_on = 0, False
    for m in unet.modules():
        count += 1
        if isinstance(m, BaseTunerLayer) and not m.disable_adapters and m.active_adapters:
            lora_on = True
    return count, lora_on


def compile_fn(fn: Callable, name: str) -> Callable:
    """torch.compile with static shapes: one compiled graph per shape, each compiled while preparing."""
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    inductor_config.conv_1x1_as_mm = True  # diffusers' recipe for SD UNets
    # One compiled entry per shape bucket and batch: above dynamo's default of 8 entries it would fall
    # back to eager for every later shape.
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    log.info("compiling the %s per shape (cached under TORCHINDUCTOR_CACHE_DIR after the first start)", name)
    return torch.compile(fn, dynamic=False)


class GraphedUNet:
    """Replays the UNet as CUDA graphs, one per input shape (active batch x latent size).

    Graphs share one memory pool (with the other runners' too, see unet_runner) and are kept for the
    `max_graphs` latest shapes (five buckets times the album's active batch sizes fit). `forward` is the
    compiled UNet call when compiling is on; `_compiles` says which shapes use it.
    """

    def __init__(
        self,
        unet,
        forward: Callable | None = None,
        max_graphs: int = 64,
        eager: Callable | None = None,
        pool: tuple | None = None,
    ):
        self.unet = unet
        self.forward = forward
        self.eager = eager  # the uncompiled call; None: the UNet's own forward
        self.compiled: set[tuple] = set()  # the shapes whose graph runs the compiled forward
        self.max_graphs = max_graphs
        self.pool = torch.cuda.graph_pool_handle() if pool is None else pool
        self.graphs: dict[tuple, tuple] = {}
        self.signature = _module_state(unet)[0]  # adapters or swapped modules change the count

    def _eager(self, x, t, embeds, *extra):
        if self.eager is not None:
            return self.eager(x, t, embeds, *extra)
        return self.unet(x, t, encoder_hidden_states=embeds, return_dict=False)[0]

    def __call__(
        self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, *extra: torch.Tensor
    ) -> torch.Tensor:
        """`extra`: more tensor inputs of the call (a ControlNet's conditioning image), copied in like x."""
        signature, lora_on = _module_state(self.unet)  # one walk per step: this is the hot path
        if lora_on:
            return self._eager(x, t, embeds, *extra)
        if signature != self.signature:
            if self.forward is not None:
                log.warning("the UNet's modules changed: running it uncompiled from now on")
            self.graphs.clear()
            self.compiled.clear()
            self.signature, self.forward = signature, None
        key = (tuple(x.shape), tuple(embeds.shape), x.dtype, *(tuple(e.shape) for e in extra))
        if key not in self.graphs:
            self._capture(key, x, t, embeds, *extra)
        graph, statics, s_out = self.graphs[key]
        for static, value in zip(statics, (x, t, embeds, *extra), strict=True):
            static.copy_(value)
        graph.replay()
        return s_out.clone()

    def _compiles(self, key: tuple, x: torch.Tensor) -> bool:
        """Compile this shape? Only a big batch, and only while the worker prepares (see the module)."""
        if self.forward is None:
            return False
        return key in self.compiled or (_preparing.get() and x.shape[0] >= COMPILED_UNET_BATCH)

    def _warm(self, static, compiled: bool) -> None:
        """One run before capture; a compiler failure costs speed, never the job: eager from then on."""
        if compiled and self.forward is not None:
            try:
                self.forward(*static)
                return
            except Exception as error:  # an inductor/triton bug on this machine
                log.error(
                    "compiled UNet failed (%s); running it uncompiled", str(error).splitlines()[0][:300]
                )
                self.forward = None
        self._eager(*static)

    def _capture(self, key, x, t, embeds, *extra) -> None:
        if len(self.graphs) >= self.max_graphs:
            self.graphs.pop(next(iter(self.graphs)))
        static = (x.clone(), t.clone().reshape(()), embeds.clone(), *(e.clone() for e in extra))
        compiled = self._compiles(key, x)
        warm_up(lambda: self._warm(static, compiled))  # compiling and autotuning happen outside the capture
        forward = self.forward if compiled and self.forward is not None else self._eager
        if forward is self.forward:
            self.compiled.add(key)
        graph, out = capture(lambda: forward(*static), self.pool)
        self.graphs[key] = (graph, static, out)


def warm_up(run: Callable[[], object], times: int = 2) -> None:
    """Run the work a graph will capture first, on a side stream, as capture requires: lazy inits, cuBLAS
    workspaces, a compiler's first call happen here, not inside the graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(times):
            run()
    torch.cuda.current_stream().wait_stream(stream)


def capture(run: Callable[[], torch.Tensor | None], pool: tuple | None = None):
    """(graph, output): `run` recorded once as a CUDA graph over the static tensors it closes over."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = run()
    return graph, out


def unet_runner(
    models, unet=None, cache_key: str = "unet_graphs", call: Callable[..., torch.Tensor] | None = None
) -> Callable[..., torch.Tensor]:
    """The UNet call used by the loop: compiled and graphed on CUDA (see above), plain elsewhere.

    `unet`/`cache_key`: another resident UNet (fast mode's) keeps graphs of its own under its own key.
    `call(x, t, embeds, *extra)`: a step that runs more than the bare UNet (the ControlNet and the UNet,
    inference/control.py), compiled and graphed the same way; `unet` is the UNet it runs, whose adapters
    and modules decide, as for the bare UNet, whether the graphs may run."""
    unet = models.txt2img.unet if unet is None else unet

    def bare(x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        return unet(x, t, encoder_hidden_states=embeds, return_dict=False)[0]

    call = bare if call is None else call
    settings = models.settings
    if models.device.type != "cuda" or not settings.cuda_graphs:
        return call
    lazy = models._lazy
    if lazy.get(cache_key) is None or lazy[cache_key].unet is not unet:
        forward = compile_fn(call, "UNet") if settings.compile else None
        # One memory pool for every runner's graphs (album, fast mode, /pose): a replay's output is copied
        # out before the next replay, so their activations may share memory as one runner's shapes do.
        pool = lazy.setdefault("graph_pool", torch.cuda.graph_pool_handle())
        lazy[cache_key] = GraphedUNet(unet, forward, eager=call, pool=pool)
    return lazy[cache_key]


def last_hidden(encoder, ids: torch.Tensor) -> torch.Tensor:
    """What diffusers' `encode_prompt` takes from the text encoder without clip skip: its output [0]."""
    return encoder(ids, return_dict=False)[0]


class GraphedText:
    """The text encoder's last hidden states for a batch of token ids (N, 77), replayed as one CUDA graph
    per N. Eager it is launch-bound (H200: 3.4-4.2 ms a call, 0.9-1.1 replayed; with diffusers'
    `encode_prompt`, two eager calls and two tokenizations, an album's prompts took 23.7 ms, now 3.1).
    Eager while a LoRA layer of the encoder is on; graphs are dropped if its modules change; if capture
    fails (a transformers version that syncs with the host), eager from then on."""

    def __init__(self, encoder, pool: tuple | None = None):
        self.encoder = encoder
        self.pool = pool
        self.graphs: dict[tuple, tuple] = {}
        self.signature = _module_state(encoder)[0]
        self.usable = True

    def eager(self, ids: torch.Tensor) -> torch.Tensor:
        return last_hidden(self.encoder, ids)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        signature, lora_on = _module_state(self.encoder)
        if lora_on or not self.usable:
            return self.eager(ids)
        if signature != self.signature:
            self.graphs.clear()
            self.signature = signature
        key = tuple(ids.shape)
        if key not in self.graphs:
            static = ids.clone()
            try:
                warm_up(lambda: self.eager(static))
                self.graphs[key] = (static, *capture(lambda: self.eager(static), self.pool))
            except RuntimeError as error:
                log.warning("text encoder without CUDA graphs: %s", str(error).splitlines()[0][:300])
                self.usable = False
                return self.eager(ids)
        static, graph, out = self.graphs[key]
        static.copy_(ids)
        graph.replay()
        return out.clone()


def text_runner(models) -> Callable[[torch.Tensor], torch.Tensor]:
    """token ids -> the base text encoder's last hidden states: graphed on CUDA (GraphedText), plain
    elsewhere."""
    encoder = models.txt2img.text_encoder
    if models.device.type != "cuda" or not models.settings.cuda_graphs:
        return lambda ids: last_hidden(encoder, ids)
    lazy = models._lazy
    if lazy.get("text_graphs") is None or lazy["text_graphs"].encoder is not encoder:
        pool = lazy.setdefault("graph_pool", torch.cuda.graph_pool_handle())
        lazy["text_graphs"] = GraphedText(encoder, pool)
    return lazy["text_graphs"]


def plain_decoder(vae) -> Callable[[torch.Tensor], torch.Tensor]:
    """latents, as the UNet denoises them (scaled by the autoencoder's `scaling_factor`) -> pixels in
    [-1, 1]: any diffusers autoencoder (the base model's VAE, or fast mode's tiny one)."""

    def plain(latents: torch.Tensor) -> torch.Tensor:
        return vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]

    return plain


def vae_decoder(models) -> Callable[[torch.Tensor], torch.Tensor]:
    """The base VAE's `plain_decoder`, compiled on CUDA for the shapes prepared at start (one decode slice
    per shape bucket), plain for any other.

    Not graphed: a decode of four pictures is ~300 kernels over 60 ms, so launching is not what costs.
    """
    vae = models.txt2img.vae
    plain = plain_decoder(vae)
    if models.device.type != "cuda" or not models.settings.compile:
        return plain
    lazy = models._lazy
    if lazy.get("vae_decode") is None or lazy["vae_decode"][0] is not vae:
        compiled = compile_fn(plain, "VAE decoder")
        shapes: set[tuple] = set()  # compiled so far
        state = {"ok": True}

        def decode(latents: torch.Tensor) -> torch.Tensor:
            shape = (*latents.shape, latents.dtype)
            new = _preparing.get() and latents.shape[0] == decode_slice(latents)
            if state["ok"] and (shape in shapes or new):
                try:
                    pixels = compiled(latents)
                    shapes.add(shape)
                    return pixels
                except Exception as error:  # as for the UNet: slower, never failed
                    log.error("compiled VAE decoder failed (%s); running it uncompiled", str(error)[:300])
                    state["ok"] = False
            return plain(latents)

        lazy["vae_decode"] = (vae, decode)
    return lazy["vae_decode"][1]
