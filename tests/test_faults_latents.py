"""Damaged precomputed latents (``sagd encode`` shards): one line naming ``latents`` and the file, before training."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from sagd.cli import main

AREA = "Damaged or foreign inputs"


def delete(folder):
    (folder / "shard-00001.safetensors").unlink()


def truncate(folder):
    path = folder / "shard-00001.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


def reshape(folder):  # a shard from a VAE with 8 latent channels at half the grid
    save_file({"latents": torch.zeros(500, 8, 2, 2), "labels": torch.zeros(500, dtype=torch.long)},
              folder / "shard-00001.safetensors")


def unlabel(folder):
    save_file({"latents": torch.zeros(500, 4, 4, 4)}, folder / "shard-00001.safetensors")


def recount(folder):
    meta = json.loads((folder / "latents.json").read_text())
    (folder / "latents.json").write_text(json.dumps({**meta, "n": 2000}))


def cut_meta(folder):
    (folder / "latents.json").write_text((folder / "latents.json").read_text()[:40])


BAD = {  # what is done to the shards: (how, what the one line says)
    "a deleted shard": (delete, "latents: shard 'lat/shard-00001.safetensors' is missing; rerun sagd encode"),
    "a truncated shard (100 bytes cut)": (truncate, "latents: shard 'lat/shard-00001.safetensors' is not a readable "
                                          "safetensors file (Error while deserializing header: incomplete metadata, "
                                          "file not fully covered); rerun sagd encode"),
    "a shard of another latent shape (another VAE)": (reshape, "latents: shard 'lat/shard-00001.safetensors' holds F32 "
                                                      "latents (500, 8, 2, 2) and I64 labels (500,), latents.json "
                                                      "says F32 latents (n, 4, 4, 4) and I64 labels (n,)"),
    "a shard without labels in a labelled set": (unlabel, "holds F32 latents (500, 4, 4, 4) and no labels, latents.json says F32 latents (n, 4, 4, 4) and I64 labels (n,)"),
    "`latents.json` counting other shards (`n` edited)": (recount, "latents: the shards of 'lat' hold 1438 latents, "
                                                          "latents.json says 2000; rerun sagd encode"),
    "`latents.json` cut short": (cut_meta, "latents: 'lat/latents.json' is damaged (JSONDecodeError("),
}


@pytest.mark.parametrize("loading", ["memory", "stream"])
@pytest.mark.parametrize("what", BAD)
def test_damaged_latents_are_named_in_one_line(what, loading, latent_dir, vae_dir, tmp_path, capsys, fault):
    shutil.copytree(latent_dir, tmp_path / "lat")
    BAD[what][0](tmp_path / "lat")
    (tmp_path / "run.yaml").write_text(f"dataset: digits\ndata_loading: {loading}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", str(tmp_path / "run.yaml"), "--vae", str(vae_dir), "--latents", str(tmp_path / "lat"),
              "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sagd: error: latents: ") and BAD[what][1] in err
    if loading == "stream":
        fault(AREA, f"latents of `sagd encode` with {what}, then `sagd train --latents`", f"exit 2: `{err.strip()}`")
