"""The README and docs/: relative links resolve, the README stays short, its commands parse,
the tests the pages name exist."""

import re
import shlex
from pathlib import Path

import pytest

from vertseg_tf.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a page (duplicates get -1, -2, ...)."""
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _FENCE.sub("", text), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    targets = [link or image for link, image in _LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif (anchor and linked.suffix == ".md"
              and anchor not in _github_anchors(linked.read_text(encoding="utf-8"))):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_the_anchor_rule_matches_github():
    text = "# Loading a model\n## `load_model` & friends\n## Loading a model\n```\n# not\n```\n"
    assert _github_anchors(text) == {"loading-a-model", "load_model--friends",
                                     "loading-a-model-1"}


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) < README_MAX_LINES


_SEPARATORS = (";", "&&", "&")  # "&": a command started in the background


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = [*lexer, ";"]
            while any(sep in words for sep in _SEPARATORS):
                end = min(words.index(sep) for sep in _SEPARATORS if sep in words)
                command, words = words[:end], words[end + 1:]
                while command and "=" in command[0]:  # leading VAR=value assignments
                    command.pop(0)
                if command and Path(command[0]).name in ("vertseg-tf", "vertseg-tf-train"):
                    commands.append(command)
    return commands


def test_every_vertseg_tf_command_in_the_readme_parses():
    commands = _readme_commands()
    assert len(commands) >= 6
    parser = build_parser()
    for words in commands:
        argv = words[1:] if Path(words[0]).name == "vertseg-tf" else ["train", *words[1:]]
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README command does not parse: {' '.join(words)}")


# `tests/a/test_b.py::test_c`, or `::test_d`: another test of the file named last on the line.
_TEST_ID = re.compile(r"`(?:(tests/[\w/]+\.py)(?:::(\w+))?|::(\w+))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_tests_a_page_names_exist(page):
    missing = []
    for line in page.read_text(encoding="utf-8").splitlines():
        current = None
        for path, name, next_name in _TEST_ID.findall(line):
            current, name = (ROOT / path if path else current), name or next_name
            if current is None or not current.is_file():
                missing.append(f"{path or name}: no such test file")
            elif name and not re.search(rf"^def {name}\(", current.read_text(encoding="utf-8"),
                                        re.MULTILINE):
                missing.append(f"{current.relative_to(ROOT)}::{name}: no such test")
    assert missing == []
