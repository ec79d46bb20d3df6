"""The training loop (Accelerate): one code path for isotropic and SAGD runs, CPU to multi-GPU.

``train(cfg)`` runs ``cfg.steps`` optimizer steps of AdamW (linear warm-up, gradient clipping,
EMA, mixed precision where the device has it, gradient accumulation) and writes the run folder:

    runs/<name>/config.yaml  metrics.jsonl  samples/step_*.png  checkpoints/step_*/

Every random draw comes from three explicit generators per process (batches, times and label
dropout, diffusion noise) whose states are checkpointed, so ``train(cfg, resume=True)`` continues
bit-for-bit on CPU. The same code runs under ``accelerate launch`` with any number of processes;
each process draws its own batches from generators seeded by ``(seed, process index)``.

Faults end well (docs/faults.md): SIGTERM or SIGINT finishes the step, checkpoints and stops
(``stops``); checkpoints are also written every ``checkpoint_minutes``; a non-finite loss or
gradient norm is never applied (``finite.StepGuard``, on the device: a training step makes the
host wait for nothing); ``resume=True`` takes the newest intact
checkpoint that belongs to the config (``resume.find``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image
from tqdm.auto import tqdm

from . import checkpoint, diffusion, finite, learning_order, resume as resuming, stops, threads
from .config import TrainConfig, save_config
from .data import corrupt_band
from .diffusion import frequency_parametrization, frequency_spec
from .diffusion.frequency import FrequencyProcess
from .diffusion.parametrization import sample_time
from .ema import EMA
from .latent import VAE
from .models import Network, compile_network, drop_labels
from .progress import Progress, SlowdownWatch
from .run import PRIOR, build_process, check_device, generate, sampler_denoiser
from .spectral import SpectralCovariance, from_spec
from .training_data import batches, on_device, probe_images, training_data

STREAMS = ("data", "time", "noise")
METRICS = "metrics.jsonl"
AGREE_EVERY = 10  # steps between the processes' agreements on stopping (signals, time) when there are several
SAMPLES = "samples"


# ---------------------------------------------------------------------------- building blocks
def generators(seed: int, rank: int, device) -> dict[str, torch.Generator]:
    """Independent generators for each stream of ``STREAMS``, seeded from ``(seed, rank, stream)``."""
    out = {}
    for i, name in enumerate(STREAMS):
        s = int(np.random.SeedSequence([seed, rank, i]).generate_state(1, np.uint64)[0] >> 1)
        out[name] = torch.Generator(device=device).manual_seed(s)
    return out


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up from 0 to ``cfg.lr`` over ``cfg.warmup`` steps, then constant."""
    return cfg.lr * min(1.0, step / cfg.warmup) if cfg.warmup else cfg.lr


def mixed_precision(cfg: TrainConfig) -> str:
    """``"auto"``: bf16 on GPUs that support it, else no mixed precision."""
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def covariance(cfg: TrainConfig, images: torch.Tensor) -> SpectralCovariance:
    """The noise covariance of ``cfg.spectrum`` for ``images`` ``(N, C, H, W)`` (``data_matched`` uses them)."""
    return from_spec(cfg.spectrum, tuple(images.shape[1:]), data=images)


def save_grid(images: torch.Tensor, path: str | Path) -> None:
    """Write ``images`` ``(N, C, H, W)`` in ``[-1, 1]`` (C = 1 or 3) as one PNG grid, ``ceil(√N)`` wide."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, c, h, w = x.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.zeros((c, rows * (h + 2) + 2, cols * (w + 2) + 2), dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, 2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + q * (w + 2): 2 + q * (w + 2) + w] = x[i]
    array = grid[0].numpy() if c == 1 else grid.permute(1, 2, 0).numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after ``step`` (logged after the checkpoint a resumed run restarts from), and a last line
    cut short by a kill; rewritten atomically."""
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if _step_of(line) is not None and _step_of(line) <= step]
        checkpoint.write_text_atomic(path, "".join(line + "\n" for line in keep))


def _step_of(line: str) -> int | None:
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------------------- the loop
class Trainer:
    """State of one run: accelerator, data, process, network, EMA, optimizer, generators, step."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg, self.dir = cfg, Path(cfg.out)
        self.acc = Accelerator(
            mixed_precision=mixed_precision(cfg),
            gradient_accumulation_steps=cfg.grad_accum,
            log_with="tensorboard" if importlib.util.find_spec("tensorboard") else None,
            project_dir=str(self.dir),
        )
        if cfg.compile and cfg.channels_last and self.acc.device.type == "cpu":
            raise ValueError("compile with channels_last trains another network on a CPU (torch 2.13's inductor computes "
                             "wrong gradients for channels-last UNets there: tests/test_cpu_speed.py); choose one")
        ckpt = self._find_checkpoint() if resume else None
        if not resume and checkpoint.list_checkpoints(self.dir):
            raise ValueError(f"{str(self.dir)!r} already holds checkpoints: resume it with --resume {self.dir} or choose another --out")
        device = self.acc.device

        self.vae = VAE.load(cfg.vae, device) if cfg.vae else None
        data = training_data(cfg, self.vae)  # images or their latents in memory, or a stream
        if cfg.class_conditional and data.labels is None:
            raise ValueError(f"class_conditional needs labels, and dataset {cfg.dataset!r} has none")
        self.cov = (SpectralCovariance.from_state_dict(checkpoint.load_tensors(ckpt, "covariance")) if ckpt
                    else covariance(cfg, data.images))
        if self.cov.shape != data.shape:
            raise ValueError(f"checkpoint file {str(ckpt / 'covariance.safetensors')!r} is for images of shape "
                             f"{self.cov.shape}, the data set {cfg.dataset!r} has {data.shape}")
        self.fitted_prior = frequency_spec.needs_data_prior(cfg.process)
        self.proc = build_process(cfg, self.cov, checkpoint.load_tensors(ckpt, PRIOR) if ckpt and self.fitted_prior
                                  else None)
        if self.fitted_prior and not ckpt:  # inverse heat: p_1 of the Gaussian with the training images' statistics
            self.proc = self.proc.with_prior(*frequency_spec.fit_prior(self.proc, data.images))
        check_device(self.proc, device)
        labelled = cfg.class_conditional
        self.data = on_device(data, device, labelled)

        torch.manual_seed(cfg.seed)  # the network's initial weights
        net = Network(cfg.model, data.shape, data.num_classes if cfg.class_conditional else None)
        self.gens = generators(cfg.seed, self.acc.process_index, device)
        self.step, self.stream_batches = 0, 0
        if ckpt:
            resuming.load_into(net, ckpt, "model")
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        # fused on every device: one kernel for all parameters, and it skips a step flagged on the device
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.net, self.opt = self.acc.prepare(net, opt)
        # the bare Network, looked up once: unwrap_model walks every module (~0.3 ms a call for the base UNet)
        self.network = self.acc.unwrap_model(self.net)
        self.ema = EMA(self.network, cfg.ema_decay)
        if cfg.compile:  # in place, after the EMA copy: parameter names (and checkpoints) are unchanged
            compile_network(self.network, device)
        if ckpt:
            self._restore(ckpt)
        self.batches = batches(self.data, cfg.batch_size, self.gens["data"], cfg.seed, self.acc.process_index,
                               self.acc.num_processes, cfg.data_workers, start=self.stream_batches)
        self.probe = (learning_order.Probe(self.proc, probe_images(cfg, data, self.vae).to(device), seed=cfg.seed)
                      if cfg.probe_every else None)
        self.guard = finite.StepGuard(cfg.skip_nonfinite, self.acc.reduce if self.acc.num_processes > 1 else None,
                                      self.say, self.newest_checkpoint_hint)
        self.found_inf = torch.zeros((), device=device)  # 1.0 when the guard dropped the last step (on the device)
        self.signals: stops.StopSignals | None = None  # set by train(): SIGTERM / SIGINT stop after a checkpoint
        self.stopping = False
        self.saved_at = time.time()
        self.bar = None

    # ------------------------------------------------------------------ checkpoints
    def say(self, message: str) -> None:
        """One line on stderr from the main process."""
        if self.acc.is_main_process:
            tqdm.write(message, file=sys.stderr)

    def _find_checkpoint(self) -> Path | None:
        ckpt = resuming.find(self.dir, self.cfg.to_dict(), lambda m: self.say(f"sagd: {m}"), required=False)
        self.say(f"sagd: resuming {str(self.dir)!r} from {ckpt.name}" if ckpt else
                 f"sagd: {str(self.dir)!r} has no checkpoint yet: starting it from step 0")
        return ckpt

    def _restore(self, ckpt: Path) -> None:
        state = checkpoint.load_state(ckpt)
        resuming.require(state, ckpt, ("processes", "optimizer", "ema_updates"))
        if state["processes"] != self.acc.num_processes:
            raise ValueError(f"checkpoint {str(ckpt)!r} was written by {state['processes']} processes; "
                             f"resume it with the same number (got {self.acc.num_processes})")
        self.step, self.stream_batches = state["step"], state.get("stream_batches") or 0
        resuming.load_into(self.ema.module, ckpt, "ema")
        rng = checkpoint.load_tensors(ckpt, "rng")
        try:
            self.opt.load_state_dict(checkpoint.unflatten_optimizer(checkpoint.load_tensors(ckpt, "optimizer"),
                                                                    state["optimizer"]))
            self.ema.n_averaged.fill_(state["ema_updates"])
            for name, g in self.gens.items():
                g.set_state(rng[f"{name}.{self.acc.process_index}"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise checkpoint.DamagedCheckpoint(f"checkpoint {str(ckpt)!r} does not fit this run "
                                               f"(optimizer, EMA count or generator states): {e!r:.200}") from None

    def save(self) -> None:
        """Write a checkpoint at the current step (collective: every process must call it) once the guard has
        read the last step; refuses non-finite weights, which would replace the last good checkpoint."""
        self.guard.settle()
        weights = self.network.state_dict()
        if finite.nonfinite_entries(weights) or finite.nonfinite_entries(self.ema.module.state_dict()):
            raise stops.Stopped(f"step {self.step}: the weights are no longer finite: no checkpoint written"
                                f"{self.newest_checkpoint_hint()}")
        self.saved_at = time.time()
        states = torch.stack([g.get_state() for g in self.gens.values()]).to(self.acc.device)
        states = self.acc.gather(states[None]).cpu()  # (processes, streams, state bytes)
        if not self.acc.is_main_process:
            return
        opt_tensors, opt_meta = checkpoint.flatten_optimizer(self.opt.state_dict())
        rng = {f"{name}.{rank}": states[rank, i] for rank in range(len(states)) for i, name in enumerate(STREAMS)}
        checkpoint.save(
            self.dir, self.step,
            {
                "model": weights,
                "ema": self.ema.module.state_dict(),
                "optimizer": opt_tensors,
                "rng": rng,
                "covariance": self.cov.state_dict(),
                **({PRIOR: dict(zip(("mean", "power"), self.proc.prior()))} if self.fitted_prior else {}),
            },
            {
                "optimizer": opt_meta,
                "ema_updates": int(self.ema.n_averaged),
                "processes": self.acc.num_processes,
                "stream_batches": getattr(self.batches, "consumed", None),  # batches each process drew (streams)
                "num_classes": self.network.num_classes,
                "backbone": self.network.config,
                "config": self.cfg.to_dict(),
            },
            keep=self.cfg.keep_checkpoints,
        )

    # ------------------------------------------------------------------ one step
    def micro_step(self) -> torch.Tensor:
        """Loss of one micro-batch: draw, corrupt, noise (``cfg.omission``), predict; backward included."""
        cfg, g = self.cfg, self.gens
        x0, labels = next(self.batches)
        if cfg.corrupt is not None:
            c = cfg.corrupt
            x0 = corrupt_band(x0, c.low, c.high, c.gamma, c.unit, generator=g["data"])
        t = sample_time(x0.shape[0], self.proc, g["time"], x0.device)
        net = self.net
        if labels is not None:
            null = self.network.null_class
            labels = drop_labels(labels, cfg.label_dropout, null, g["time"])
            net = lambda x, t_: self.net(x, t_, labels)  # noqa: E731
        with self.acc.accumulate(self.net):
            if isinstance(self.proc, FrequencyProcess):
                loss = frequency_parametrization.loss(net, self.proc, x0, cfg.prediction, generator=g["noise"], t=t)
            else:
                loss = diffusion.loss(net, self.proc, x0, cfg.prediction, generator=g["noise"], t=t,
                                      omission=cfg.omission)
            self.acc.backward(loss)
            if self.acc.sync_gradients:
                norm = self.acc.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
                # fp16's GradScaler skips overflowing steps itself, with its own found_inf: only the loss is
                # checked then (a non-finite loss has non-finite gradients, which the scaler finds)
                self.found_inf = self.guard.check(self.step, loss, None if self.acc.scaler else norm)
                self.opt.optimizer.found_inf = self.found_inf  # fused AdamW leaves its state as it is when 1
                self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    def train_step(self) -> torch.Tensor:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean micro-batch loss (0-d, on
        the device). No host read: a step that ``StepGuard`` drops (``self.found_inf`` is 1) changes neither
        the weights, the optimizer's state nor the EMA; the host learns of it at the next step
        (``guard.settle()``: at once)."""
        self.step += 1
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(self.cfg, self.step)
        loss = sum(self.micro_step() for _ in range(self.cfg.grad_accum)) / self.cfg.grad_accum
        self.ema.update_parameters(self.network, skip=self.found_inf)
        return loss

    # ------------------------------------------------------------------ logging and samples
    def append(self, record: dict) -> None:
        """Append ``record`` to ``metrics.jsonl`` (main process)."""
        if self.acc.is_main_process:
            with open(self.dir / METRICS, "a") as f:
                f.write(json.dumps(record) + "\n")

    def log(self, record: dict) -> None:
        self.append(record)
        self.acc.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def probe_due(self) -> bool:
        """Whether this step is a learning-order probe's: every ``probe_every`` steps, or (``geometric``) at
        ``probe_every`` times a power of two."""
        every, step = self.cfg.probe_every, self.step
        if step % every:
            return False
        return self.cfg.probe_spacing == "linear" or (step // every) & (step // every - 1) == 0

    def log_probe(self) -> None:
        """Log the EMA network's band-split denoising error (``learning_order.Probe``; main process)."""
        ema = self.ema.module
        was_training = ema.training
        ema.eval()
        record = self.probe(sampler_denoiser(ema, self.proc, self.cfg.prediction))
        ema.train(was_training)
        self.append({"step": self.step, "kind": "probe", **record})

    def sample_grid(self) -> Path:
        """Sample the EMA network with a fixed seed and write ``samples/step_*.png`` (main process)."""
        cfg = self.cfg
        g = torch.Generator(self.acc.device).manual_seed(cfg.seed)
        x, _ = generate(self.ema.module, self.proc, cfg.prediction, cfg.sample_n, cfg.sample_method,
                        cfg.sample_steps, g, clip=cfg.sample_clip)
        path = self.dir / SAMPLES / f"step_{self.step:08d}.png"
        save_grid(x if self.vae is None else self.vae.decode(x), path)
        return path

    def out_of_time(self) -> bool:
        """Whether ``cfg.max_minutes`` has passed (agreed by all processes)."""
        if self.cfg.max_minutes is None or not self.agreeing():
            return False
        late = torch.tensor(float(time.time() - self.started > 60 * self.cfg.max_minutes),
                            device=self.acc.device if self.acc.num_processes > 1 else "cpu")  # one process: no sync
        return bool(self.acc.reduce(late, "sum") > 0)

    # ------------------------------------------------------------------ the run
    def run(self) -> Path:
        cfg, acc = self.cfg, self.acc
        if acc.is_main_process:
            self.dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.dir / "config.yaml")
            truncate_metrics(self.dir / METRICS, self.step if self.step else -1)  # a fresh run keeps none
        acc.init_trackers("sagd")
        bar = self.bar = Progress(cfg.steps, self.step, cfg.max_minutes, disable=not acc.is_main_process)
        self.started = time.time()
        self.slowdown = SlowdownWatch()
        window = Window()
        saved = self.step
        probing = self.probe is not None and acc.is_main_process
        if probing and self.step == 0:
            self.log_probe()
        while self.step < cfg.steps and not self.out_of_time():
            window.add(self.train_step(), self.found_inf)
            bar.update(self.step)
            if probing and self.probe_due():
                with window.paused():
                    self.log_probe()
            if self.step % cfg.log_every == 0:
                self.log_window(window, bar)
            if self.step % cfg.sample_every == 0 and acc.is_main_process:
                with window.paused():
                    self.sample_grid()
            if self.step % cfg.checkpoint_every == 0 or self.checkpoint_due():
                with window.paused():
                    self.save()
                saved = self.step
            if self.stopping:
                self.stop(window, bar)
        self.guard.settle()  # a dropped last step is reported (or stops the run) before the run ends
        if window.steps:
            self.log_window(window, bar)
        if probing and not self.probe_due():  # the final network is always probed
            self.log_probe()
        bar.close()
        if saved != self.step:
            self.save()
        if acc.is_main_process and not (self.dir / SAMPLES / f"step_{self.step:08d}.png").exists():
            self.sample_grid()
        acc.wait_for_everyone()
        self.close()
        return self.dir

    def close(self, collective: bool = True) -> None:
        """Close the bar and (``collective``: every process is still there) the trackers and process group."""
        if self.bar is not None:
            self.bar.close()
        if not collective:
            return
        self.acc.end_training()
        if torch.distributed.is_initialized():  # an undestroyed process group can hang the interpreter's exit
            torch.distributed.destroy_process_group()

    def stopped_by(self, error: BaseException) -> stops.Stopped | None:
        """The ``Stopped`` that ``error`` amounts to, its line printed (``None``: not a fault of the run's
        surroundings, to be raised as it is)."""
        lost = not isinstance(error, (stops.Stopped, OSError)) and stops.lost_peer(error)
        if isinstance(error, stops.Stopped):
            stop = error
        elif isinstance(error, OSError):  # a full disk, a lost mount: the checkpoints on disk are intact
            stop = stops.Stopped(f"step {self.step}: a write failed: {error}{self.newest_checkpoint_hint()}; "
                                 f"{self.resume_hint()} once it can write again")
        elif lost:  # another process of the run died: its collective fails here (gloo) or hangs (then: SIGTERM)
            stop = stops.Stopped(f"step {self.step}: lost contact with another process of this run "
                                 f"({str(error).split('. ')[0][:200]}){self.newest_checkpoint_hint()}; "
                                 f"{self.resume_hint()}")
        else:
            return None
        self.close(collective=not lost)
        if self.acc.is_main_process or lost:
            print(f"sagd: stopped: {stop}", file=sys.stderr, flush=True)
        return stop

    # ------------------------------------------------------------------ stopping early
    def agreeing(self) -> bool:
        """Whether the processes agree on stopping and on time-based checkpoints at this step: every
        step for one process (no collective), every ``AGREE_EVERY`` steps for several (each agreement
        is a collective and a host sync)."""
        return self.acc.num_processes == 1 or self.step % AGREE_EVERY == 0

    def checkpoint_due(self) -> bool:
        """Whether to checkpoint now, besides ``checkpoint_every``: a stop signal reached any process (sets
        ``self.stopping``), or ``checkpoint_minutes`` passed since the last checkpoint. Agreed by all processes."""
        if not self.agreeing():
            return False
        minutes = self.cfg.checkpoint_minutes
        flags = torch.tensor([float(self.signals is not None and self.signals.received is not None),
                              float(minutes is not None and time.time() - self.saved_at > 60 * minutes)],
                             device=self.acc.device if self.acc.num_processes > 1 else "cpu")  # one process: no sync
        flags = self.acc.reduce(flags, "sum").cpu()
        self.stopping = bool(flags[0] > 0)
        return bool(flags.any())

    def stop(self, window: "Window", bar) -> None:
        """After a stop signal and the checkpoint it asked for: log the last steps and raise ``Stopped``."""
        if window.steps:
            self.log_window(window, bar)
        bar.close()
        raise stops.after_signal(self.signals.received, f"after step {self.step}, checkpoint written; "
                                                       f"{self.resume_hint()}")

    def resume_hint(self) -> str:
        n = self.acc.num_processes
        return f"resume with: sagd train --resume {self.dir}" + (f" (same launcher, {n} processes)" if n > 1 else "")

    def newest_checkpoint_hint(self) -> str:
        found = checkpoint.list_checkpoints(self.dir)
        return (f"; the newest checkpoint, {found[-1].name}, is untouched" if found else "")

    def log_window(self, window: "Window", bar: Progress) -> None:
        """Log the mean loss of the applied steps (``None`` if none was) and the training throughput since the
        last record, then reset ``window``."""
        self.guard.settle()
        loss = self.acc.reduce(window.loss / (window.steps - window.dropped), "mean").item()
        loss = loss if math.isfinite(loss) else None
        images = self.cfg.batch_size * self.cfg.grad_accum * self.acc.num_processes * window.steps
        images_per_s = images / (time.time() - window.start)
        record = {"step": self.step, "loss": loss, "lr": learning_rate(self.cfg, self.step), "images_per_s": images_per_s}
        if self.acc.device.type == "cpu":
            record["threads"] = torch.get_num_threads()
            self.slowdown(images_per_s, threads.advice())
        self.log(record)
        bar.update(self.step, loss=f"{loss:.4f}" if loss is not None else "-")
        window.reset()


class Window:
    """The losses summed since the last log record, and the steps dropped (kept on the device: no sync per step)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.loss, self.dropped, self.steps, self.start = 0.0, 0.0, 0, time.time()

    def add(self, loss: torch.Tensor, found_inf: torch.Tensor) -> None:
        """Count one step; one that ``StepGuard`` dropped (``found_inf`` 1) adds no loss."""
        self.loss = self.loss + loss.masked_fill(found_inf > 0, 0.0)
        self.dropped, self.steps = self.dropped + found_inf, self.steps + 1

    @contextlib.contextmanager
    def paused(self):
        """Leave the time spent inside (sampling, checkpoints) out of the window's throughput."""
        start = time.time()
        yield
        self.start += time.time() - start


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train ``cfg`` (continuing its newest intact checkpoint when ``resume``); returns the run folder.

    Raises ``stops.Stopped`` (one line, an exit status) when the run ends early: a stop signal
    (after a checkpoint), a non-finite step, a failed write, a lost process; the line is also
    printed (``sagd: stopped: ...``), before a launcher's SIGTERM can cut it short.
    """
    trainer = Trainer(cfg.validate(), resume)
    with stops.StopSignals() as trainer.signals:
        try:
            return trainer.run()
        except (stops.Stopped, OSError, RuntimeError) as e:
            stop = trainer.stopped_by(e)  # its line is printed while the signal handlers are still ours
            if stop is None:
                raise
    raise stop
