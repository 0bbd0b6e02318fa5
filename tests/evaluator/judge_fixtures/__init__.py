"""Judge fixtures: XSTest's judge prompt and the HarmBench classifier card (excerpts, licences in each file), and a
tiny stand-in classifier folder: the tiny model's files beside the card, as staging leaves a real classifier."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
CARD = HERE / "harmbench_card" / "README.md"
XSTEST_EXCERPT = HERE / "xstest_classify_prompt.py.txt"


def classifier_folder(tiny_model_dir: Path, dest: Path, card: Path | None = CARD) -> Path:
    """``dest`` holding links to the tiny model's files and a copy of the classifier card (or no card)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(tiny_model_dir).iterdir():
        if f.is_file() and f.name != "README.md":
            (dest / f.name).symlink_to(f.resolve())
    if card is not None:
        (dest / "README.md").write_text(card.read_text(encoding="utf-8"), encoding="utf-8")
    return dest
