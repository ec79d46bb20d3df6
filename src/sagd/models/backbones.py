"""The backbone registry: a preset name or a diffusers config file → a diffusers model for the data.

``model`` (``TrainConfig.model``) is a key of ``PRESETS`` or the path of a diffusers model config
(JSON, as ``save_pretrained`` writes it: ``config.json`` with ``_class_name``) of one of
``CLASSES``. Whatever the data decides is set from the data and overrides the file: the sample
size, the input/output channels and the class embeddings. Every other key is the file's.

Two families, one call convention ``(x, 1000 t, labels) -> output`` (``forward``):

* ``UNet2DModel``: ``num_class_embeds = classes + 1`` (the last the null class of guidance).
* ``DiTTransformer2DModel``: conditioning is always a class label through adaLN-Zero
  (``num_embeds_ada_norm``). diffusers builds that table with one extra row, which is our null
  class, and would drop labels at random inside ``forward`` in training mode from the global RNG;
  that dropout is switched off (sagd drops labels itself, from its checkpointed generators).
  An unconditional DiT has one class, always label 0.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
from diffusers import DiTTransformer2DModel, UNet2DModel
from diffusers.models.embeddings import LabelEmbedding

from .presets import DIT, PRESETS, UNET

CLASSES = {UNET: UNet2DModel, DIT: DiTTransformer2DModel}
# keys that the data sets, per class
_DATA_KEYS = {UNET: ("sample_size", "in_channels", "out_channels", "num_class_embeds"),
              DIT: ("sample_size", "in_channels", "out_channels", "num_embeds_ada_norm")}


def check_model(model: str) -> str:
    """``model`` if it names a preset or a ``.json`` file (read when the network is built), else ``ValueError``."""
    if model not in PRESETS and not str(model).endswith(".json"):
        raise ValueError(f"model must be one of {', '.join(PRESETS)} or a diffusers config .json file, got {model!r}")
    return model


def backbone_config(model: str | dict) -> dict:
    """The diffusers config (``_class_name`` and keyword arguments) that ``model`` names.

    ``model``: a key of ``PRESETS``, a ``.json`` config file, or such a config as a dict.
    Raises ``ValueError`` naming what is accepted.
    """
    if isinstance(model, dict):
        raw, where = dict(model), "backbone config"
    elif model in PRESETS:
        return dict(PRESETS[model])
    else:
        path = Path(check_model(model)).expanduser()
        if not path.is_file():
            raise ValueError(f"model: config file {str(path)!r} does not exist")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"model: {str(path)!r} is not valid JSON ({e.msg}, line {e.lineno})") from None
        where = f"model config {str(path)!r}"
    if not isinstance(raw, dict) or raw.get("_class_name") not in CLASSES:
        found = raw.get("_class_name") if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{where}: _class_name must be one of {', '.join(CLASSES)}, got {found!r}")
    known = set(CLASSES[raw["_class_name"]].extract_init_dict(raw)[0])
    unknown = sorted(k for k in raw if not k.startswith("_") and k not in known)
    if unknown:
        raise ValueError(f"{where}: unknown {raw['_class_name']} argument {unknown[0]!r}")
    return {k: v for k, v in raw.items() if k == "_class_name" or not k.startswith("_")}


def multiple(config: dict) -> int:
    """What the spatial input size must be a multiple of: ``2**downsamplings`` (UNet), the patch size (DiT)."""
    if config["_class_name"] == UNET:
        return 2 ** (len(config.get("block_out_channels", _default(UNet2DModel, "block_out_channels"))) - 1)
    return int(config.get("patch_size", _default(DiTTransformer2DModel, "patch_size")))


def _default(cls, key: str):
    return inspect.signature(cls.__init__).parameters[key].default


def build(config: dict, channels: int, size: int, num_classes: int | None) -> torch.nn.Module:
    """A fresh diffusers model of ``config`` for ``channels``-channel ``size × size`` inputs and
    ``num_classes`` classes (``None``: unconditional), with the null class at index ``num_classes``."""
    kind = config["_class_name"]
    data = dict(zip(_DATA_KEYS[kind], (size, channels, channels)))
    if kind == UNET:
        data["num_class_embeds"] = None if num_classes is None else num_classes + 1
    else:
        data["num_embeds_ada_norm"] = num_classes or 1
    args = {k: v for k, v in config.items() if k != "_class_name"}
    net = CLASSES[kind].from_config({**args, **data})
    for m in net.modules():
        if isinstance(m, LabelEmbedding):
            m.dropout_prob = 0.0  # the table keeps its extra (null) row; sagd drops labels itself
    return net


def saved_config(net: torch.nn.Module) -> dict:
    """``net``'s whole config with ``_class_name`` (JSON-ready): ``build`` of it rebuilds ``net``."""
    config = {"_class_name": type(net).__name__, **{k: v for k, v in net.config.items() if not k.startswith("_")}}
    return json.loads(json.dumps(config))  # tuples as lists, as in a file


def forward(net: torch.nn.Module, x: torch.Tensor, timestep: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``net``'s output ``(B, C, H, W)`` for ``x`` ``(B, C, H, W)``, diffusers ``timestep`` ``(B,)`` and ``labels``
    ``(B,)`` (``None`` for an unconditional net)."""
    if labels is None and isinstance(net, DiTTransformer2DModel):
        labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    return net(x, timestep, class_labels=labels).sample
