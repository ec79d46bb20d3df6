"""``sagd``: the command-line entry point.

Each subcommand is a module of ``sagd.commands`` with ``register(subparsers)`` and ``run(args)``;
adding one is adding it to ``COMMANDS``. Bad input (a spec, a key, a data set, a flag value)
ends with status 2 and one line ``sagd: error: ...``, never a traceback; a run that stops early
(``stops.Stopped``: a signal, a non-finite step, a failed write) with one line ``sagd: stopped: ...``
and its own status (``128 + signal`` after a signal, else 1).
Run as a program, it first sets torch's CPU threads from the cores that are free (``sagd.threads``).
"""

from __future__ import annotations

import argparse
import sys

from . import threads
from .commands import compare, demo, encode, eval, export, features, sample, spectrum, train
from .stops import Stopped

COMMANDS = [train, sample, demo, spectrum, features, eval, compare, export, encode]


class Parser(argparse.ArgumentParser):
    """``argparse`` with one-line errors (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"sagd: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    parser = Parser(prog="sagd", description="Spectrally Anisotropic Gaussian Diffusion: train, sample, inspect.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:  # run as the program: torch's threads fit the free cores (from Python, the caller's stand)
        threads.configure()
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as e:
        parser.exit(2, f"sagd: error: {one_line(e)}\n")
    except Stopped as e:  # a run ended early but cleanly (a signal, a NaN, a failed write): its line is out
        parser.exit(e.status)
    except OSError as e:  # a write that failed outside a training run (e.g. a full disk while sampling)
        parser.exit(1, f"sagd: error: {one_line(e)}\n")
    return 0


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
