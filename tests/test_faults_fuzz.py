"""Fuzzed inputs (hypothesis): spectrum specs, data-set specs, YAML configs and command lines give a valid
object or one clear line (``ValueError`` / ``sagd: error: ...``), never a traceback or a hang.

Inputs are drawn from each grammar (names, keys and values, real and wrong) mixed with arbitrary text;
``derandomize`` keeps every run, and the fault table, the same. Heavy work after parsing (training,
plotting) is replaced by a stub that validates what it was given.
"""

from __future__ import annotations

import argparse
import inspect
import math
from datetime import timedelta

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagd.cli import build_parser, main
from sagd.config import TrainConfig, load_config
from sagd.data import load_dataset, parse_dataset_spec
from sagd.data.load import _LOADERS
from sagd.spectral import SpectralCovariance, from_spec, parse_spec
from sagd.spectral.spec import _PROFILES

AREA = "Fuzzed inputs"
FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=timedelta(seconds=20),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Tally:
    """Counts of accepted and refused inputs (their split varies with the tests run before: not in the table)."""

    def __init__(self):
        self.valid = self.refused = 0

    def refuse(self, error: BaseException) -> None:
        message = str(error)
        assert message and "\n" not in message.strip(), repr(message)
        self.refused += 1

    def row(self, fault, what: str) -> None:
        fault(AREA, what, f"{self.valid + self.refused} inputs, each a valid object or refused with one line (both "
                          f"kinds many times); no other exception, none slower than 20 s")


def text(alphabet: str = "abcdefghijklmnopqrstuvwxyz_=,:*-.0123456789 ", max_size: int = 12):
    return st.text(alphabet=alphabet, max_size=max_size)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["0", "1", "-1", "0.5", "1e-12", "1e300", "-1e300", "nan", "inf", "-inf", "1e-400", "0x10"]),
)


def terms(names, keys, values):
    item = st.one_of(st.tuples(keys, values).map("=".join), text(max_size=6))
    return st.tuples(names, st.lists(item, max_size=4)).map(lambda t: t[0] + (":" + ",".join(t[1]) if t[1] else ""))


# ---------------------------------------------------------------------------- spectrum specs
SPECTRUM_KEYS = sorted({p for f in _PROFILES.values() for p in inspect.signature(f).parameters} - {"shape", "data"})
SPECTRUM_VALUES = st.one_of(NUMBERS, st.tuples(NUMBERS, NUMBERS).map("-".join),
                            st.sampled_from(["true", "false", "cycles", "nyquist", "0-0.3", "0.5-1", "1-0"]), text(max_size=5))
PLAUSIBLE = st.one_of(st.floats(-5, 5).map(lambda x: f"{x:.3g}"),
                      st.sampled_from(["0.1", "0.3", "0.5", "1", "2", "1e-10", "true", "false", "cycles", "nyquist",
                                       "0-0.3", "0.5-1", "0.2-0.4"]))


def own_terms(name: str):
    """Terms of profile ``name`` with its own keys and plausible values: mostly valid."""
    keys = [p for p in inspect.signature(_PROFILES[name]).parameters if p not in ("shape", "data")]
    items = st.lists(st.tuples(st.sampled_from(keys), PLAUSIBLE).map("=".join), max_size=3) if keys else st.just([])
    return items.map(lambda kv: name + (":" + ",".join(kv) if kv else ""))


SPECTRA = st.one_of(
    st.lists(st.sampled_from(list(_PROFILES)).flatmap(own_terms), min_size=1, max_size=3).map("*".join),
    st.lists(terms(st.sampled_from([*_PROFILES, "pink", ""]), st.sampled_from([*SPECTRUM_KEYS, "beta", ""]),
                   SPECTRUM_VALUES), min_size=1, max_size=3).map("*".join),
    st.text(max_size=30),
)
SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))
DATA = torch.randn(4, 3, 9, 9, generator=torch.Generator().manual_seed(0))


def test_fuzz_spectrum_specs(fault):
    tally = Tally()

    @FUZZ
    @given(SPECTRA, SHAPES)
    def check(spec, shape):
        try:
            parse_spec(spec)
            cov = from_spec(spec, shape, data=DATA[:, : shape[0], : shape[1], : shape[2]])
        except ValueError as e:
            tally.refuse(e)
            return
        assert isinstance(cov, SpectralCovariance) and cov.shape == shape
        w = cov.weights
        assert torch.isfinite(w).all() and (w >= 0).all() and cov.rank > 0
        assert torch.isfinite(cov.sample(2, generator=torch.Generator().manual_seed(0))).all()
        tally.valid += 1

    check()
    assert tally.valid > 10 and tally.refused > 30
    tally.row(fault, "spectrum specs from the grammar (every profile, key and value kind, and wrong ones) and "
                     "arbitrary text, on random shapes up to 3×9×9")


# ---------------------------------------------------------------------------- data-set specs
DATASET_KEYS = sorted({p for f in _LOADERS.values() for p in inspect.signature(f).parameters} - {"split", "root"})
DATASET_VALUES = st.one_of(NUMBERS, st.sampled_from(["true", "false", "maybe", "missing_dir", "x.npz"]),
                           text("abcdefghijklmnopqrstuvwxyz", max_size=6))
DATASETS = st.one_of(terms(st.sampled_from([*_LOADERS, "imagenet", ""]), st.sampled_from([*DATASET_KEYS, "path", "depth"]),
                           DATASET_VALUES), st.text(max_size=30))


def test_fuzz_dataset_specs(tmp_path, monkeypatch, fault):
    monkeypatch.chdir(tmp_path)  # relative paths in specs point into an empty folder
    monkeypatch.setenv("SAGD_DATA", str(tmp_path))
    tally = Tally()

    @FUZZ
    @given(DATASETS, st.sampled_from(["train", "test"]))
    def check(spec, split):
        try:
            name, kwargs = parse_dataset_spec(spec)
            if name in ("grf", "folder", "npz", "patches") or (name == "digits" and not kwargs):
                data = load_dataset(spec, split, root=str(tmp_path))  # cheap sets and ones found nowhere
                assert data.images.dim() == 4 and torch.isfinite(data.images).all()
        except (ValueError, FileNotFoundError) as e:
            tally.refuse(e)
            return
        tally.valid += 1

    check()
    assert tally.valid > 10 and tally.refused > 30
    tally.row(fault, "data-set specs from the grammar (every loader, key and value kind; huge `n`/`size`; paths "
                     "to nothing) and arbitrary text, loaded when cheap")


# ---------------------------------------------------------------------------- YAML configs
FIELDS = [f for f in TrainConfig.__dataclass_fields__]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["1e-4", "digits", "isotropic", "tiny", "eps", ".nan"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)
def plausible(field: str):
    """Values of the right type for config key ``field``, valid or not."""
    kind = TrainConfig.__dataclass_fields__[field].type
    default = getattr(TrainConfig(), field)
    if "int" in kind:
        return st.one_of(st.integers(-2, 10**6), st.just(default))
    if "float" in kind:
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 2), st.just(default))
    if "bool" in kind:
        return st.booleans()
    return st.one_of(st.just(default), SCALARS)


TYPED_DICTS = st.fixed_dictionaries({}, optional={f: plausible(f) for f in FIELDS if f != "corrupt"})
CONFIG_DICTS = st.dictionaries(st.one_of(st.sampled_from([*FIELDS, "stepz"]), st.integers(0, 3), st.text(max_size=6)),
                               st.one_of(VALUES, st.fixed_dictionaries({"low": SCALARS, "high": SCALARS})), max_size=5)
SPECIAL_YAML = st.sampled_from([
    "[" * 400 + "]" * 400,
    "a: &a [*a]\nsteps: *a\n",
    "!!python/object/apply:os.system ['echo hi']\n",
    "steps: 1\nsteps: 2\n",
    "\x00\x01\x02",
    "lr: 1e-4\nwarmup: 1e400\n",
    "corrupt: {low: .nan, high: 1}\n",
    "seed: 100000000000000000000\n",
    "out: ''\n",
])
YAML_TEXTS = st.one_of(TYPED_DICTS.map(yaml.safe_dump), CONFIG_DICTS.map(yaml.safe_dump), st.text(max_size=60), SPECIAL_YAML,
                       st.binary(max_size=40))


def test_fuzz_yaml_configs(tmp_path, fault):
    tally = Tally()
    path = tmp_path / "config.yaml"

    @FUZZ
    @given(YAML_TEXTS)
    def check(document):
        path.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
        try:
            cfg = load_config(path)
        except ValueError as e:
            tally.refuse(e)
            return
        assert cfg.validate() == cfg and TrainConfig.from_dict(cfg.to_dict()) == cfg
        assert all(math.isfinite(v) for v in vars(cfg).values() if isinstance(v, float))
        tally.valid += 1

    check()
    assert tally.valid > 10 and tally.refused > 100
    tally.row(fault, "YAML configs: random mappings of real and unknown keys to nested values of every type, "
                     "arbitrary text and bytes, 400-deep nesting, aliases, python tags, duplicate keys, NaN/inf")


# ---------------------------------------------------------------------------- command lines
def commands(parser=None, prefix=()) -> list[tuple[tuple[str, ...], list[str]]]:
    """Every (sub)command as ``(argv prefix, its flags)``, e.g. ``(("features", "train"), ["--dataset", ...])``."""
    found = []
    for action in (parser or build_parser())._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            if isinstance(sub, argparse.ArgumentParser):
                flags = sorted(s for a in sub._actions for s in a.option_strings if s not in ("-h", "--help"))
                found += [((*prefix, name), flags)] + commands(sub, (*prefix, name))
    return [c for c in found if c[1]] if parser is None else found


COMMAND_FLAGS = commands()
FLAG_VALUES = st.one_of(NUMBERS, SPECTRA, DATASETS, st.sampled_from(["digits", "isotropic", "tiny", "run", "ddim", "v"]),
                        text(max_size=8))


@st.composite
def command_lines(draw):
    prefix, flags = draw(st.sampled_from(COMMAND_FLAGS))
    argv = list(prefix)
    for _ in range(draw(st.integers(0, 5))):
        argv.append(draw(st.sampled_from(flags)))
        if draw(st.integers(0, 9)):
            argv.append(draw(FLAG_VALUES))
    if draw(st.booleans()):
        argv.append(draw(text(max_size=6)))
    return argv


def test_fuzz_command_lines(tmp_path, monkeypatch, capsys, fault):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAGD_DATA", str(tmp_path))
    monkeypatch.setattr("sagd.train.train", lambda cfg, resume=False: cfg.validate() and tmp_path)
    monkeypatch.setattr("sagd.commands.demo.run", lambda args: None)  # after their flags are parsed
    monkeypatch.setattr("sagd.commands.features.train_classifier", lambda *args, **kwargs: None)
    monkeypatch.setattr("sagd.commands.spectrum.run", lambda args: from_spec(
        args.spectrum, __import__("sagd.commands.spectrum", fromlist=["x"]).parse_shape(args.shape)))
    tally = Tally()

    @FUZZ
    @given(command_lines())
    def check(argv):
        try:
            status = main(argv)
        except SystemExit as e:
            status = e.code
        err = capsys.readouterr().err
        if status == 0:
            tally.valid += 1
            return
        assert status == 2, (argv, status, err)
        assert err.startswith("sagd: error: ") and err.count("\n") == 1, (argv, err)
        tally.refused += 1

    check()
    assert tally.valid > 3 and tally.refused > 100  # export and encode need flags: few random lines are valid
    tally.row(fault, "command lines: every subcommand with up to 5 of its flags in any order, values from the "
                     "spectrum and data-set grammars, numbers and text, missing values, stray arguments")
