"""Regenerate the README's results section from the benchmark tables in ``benchmarks/results``.

Every ``results/*.md`` written by a benchmark (each beside its JSON, with the machine and the
commit) is pasted between the README's ``<!-- results:start -->`` and ``<!-- results:end -->``.

    python benchmarks/readme_results.py
"""

from __future__ import annotations

from pathlib import Path

from common import RESULTS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = ["suite_headline", "noise_operator", "train_throughput", "demo_throughput", "fid_signal", "equal_compute"]


def main() -> None:
    tables = sorted(RESULTS.glob("*.md"), key=lambda p: (ORDER.index(p.stem.split("_cuda")[0]) if p.stem.split("_cuda")[0] in ORDER else len(ORDER), p.stem))
    body = "\n".join(p.read_text().strip() + "\n" for p in tables)
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n\n{body}\n{END}{tail}")
    print(f"README results: {', '.join(p.stem for p in tables)}")


if __name__ == "__main__":
    main()
