"""The repository is self-contained: every citation of docs/ resolves, none points outside.

In:  the repository's text files (.py, .md, .json, .toml, Makefile; hidden folders and runs/
     left out) and the documents under docs/.
Out: failures naming the file, the citation and what is missing.

A citation is `docs/NAME.md`, optionally followed by `§N`, `§N.M` (a numbered heading) and
`#K` (row K of that section's table), or `section N` in JSON text; inside docs/ the
`docs/` prefix may be dropped.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SUFFIXES = {".py", ".md", ".json", ".toml"}
# Documents outside the repository that code once cited; the facts now live in docs/.
OUTSIDE = ("paper_facts", "shared/reference", "shared/seeds", "peers.md")
CITATION = re.compile(r"(docs/)?\b(\w+\.md)(?: (?:§|section )(\d+(?:\.\d+)?)(?: #(\d+))?)?")
HEADING = re.compile(r"^#{2,6} (\d+(?:\.\d+)?)[. ]")


def _text_files() -> list[Path]:
    skip = {"runs", "__pycache__"}
    return sorted(p for p in ROOT.rglob("*")
                  if p.is_file() and (p.suffix in SUFFIXES or p.name == "Makefile")
                  and not any(part.startswith(".") or part in skip for part in p.relative_to(ROOT).parts)
                  and p != Path(__file__).resolve())


def _sections(doc: Path) -> dict[str, list[str]]:
    """Numbered sections of a document: {"2.1": its lines}; a top section holds its subsections."""
    sections: dict[str, list[str]] = {}
    open_keys: list[str] = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        heading = HEADING.match(line)
        if heading:
            number = heading.group(1)
            open_keys = [k for k in open_keys if number.startswith(k + ".")] + [number]
            sections[number] = []
        elif line.startswith("## "):
            open_keys = []
        for key in open_keys:
            sections[key].append(line)
    return sections


def _problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    in_docs = path.parent == DOCS
    problems = [f"{path.relative_to(ROOT)}: cites {name!r}, a document outside the repository"
                for name in OUTSIDE if name in text]
    for prefix, name, section, row in CITATION.findall(text):
        doc = DOCS / name
        if not (prefix or (in_docs and doc.is_file()) or (section and doc.is_file())):
            continue  # another Markdown file (README.md, RESULTS.md, ...)
        cite = f"{path.relative_to(ROOT)}: docs/{name}" + (f" §{section}" if section else "") + (f" #{row}" if row else "")
        if not doc.is_file():
            problems.append(f"{cite}: no such document")
            continue
        sections = _sections(doc)
        if section and section not in sections:
            problems.append(f"{cite}: no section {section}")
        elif row and not any(line.startswith(f"| {row} |") for line in sections[section]):
            problems.append(f"{cite}: section {section} has no row {row}")
    return problems


def test_every_document_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = readme[readme.index("## Documentation"):]
    docs = sorted(p.name for p in DOCS.glob("*.md"))
    assert {"architecture.md", "facts.md", "published.md", "sr_engines.md"} <= set(docs)
    assert [name for name in docs if f"docs/{name}" not in listed] == []


def test_every_citation_resolves_and_none_points_outside_the_repository():
    files = _text_files()
    assert any(p.name == "model.py" for p in files) and any(p.parent == DOCS for p in files)
    problems = [problem for path in files for problem in _problems(path)]
    assert not problems, "\n".join(problems)


def test_links_between_docs_resolve():
    for doc in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text(encoding="utf-8")):
            assert (DOCS / target).exists(), f"{doc.name} links to missing {target}"
