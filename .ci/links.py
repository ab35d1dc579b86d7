#!/usr/bin/env python3
"""The README's and the guide pages' links work where users read them (issue 20): on crates.io
(README.md) and docs.rs (docs/*.md, included as `rawpost::guide::*`). A relative link resolves on
neither (crates.io has no repository to resolve it against; docs.rs renders a page at
guide/NAME/index.html), so every link must be one of:

- `#anchor`, a heading of the same page;
- `https://docs.rs/rawpost/latest/rawpost/guide/NAME/index.html`, NAME a module of `guide` in
  src/lib.rs, optionally with `#anchor` (a heading of that page);
- `https://docs.rs/crate/rawpost/latest` (the crate's page: the README) or
  `https://docs.rs/crate/rawpost/latest/source/PATH`, PATH a file `cargo package --list` ships;
- any other `http(s)://` address (another project's; not checked here, CI has no network).

    .ci/links.py    (prints each bad link, exits 1 if there is one)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)

GUIDE = "https://docs.rs/rawpost/latest/rawpost/guide/"
SOURCE = "https://docs.rs/crate/rawpost/latest/source/"
CRATE = "https://docs.rs/crate/rawpost/latest"


def anchors(text):
    """GitHub/rustdoc-style anchors of a Markdown page's headings."""
    out = set()
    for line in text.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def code_free(text):
    """The page without fenced code blocks and inline code (whose brackets are not links)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


lib = open("src/lib.rs", encoding="utf-8").read()
modules = {}
for name, page in re.findall(
    r"pub mod (\w+) \{\s*#!\[doc = include_str!\(\"\.\./(docs/[\w\-]+\.md)\"\)\]", lib
):
    modules[name] = page
packaged = set(
    subprocess.run(
        ["cargo", "package", "--list", "--allow-dirty", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
)

pages = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md")
)
bad = []
count = 0
for page in pages:
    text = open(page, encoding="utf-8").read()
    if page.startswith("docs/") and page not in modules.values():
        bad.append((page, "(the page)", "not included in rawpost::guide (src/lib.rs)"))
    for target in re.findall(r"\]\(([^)\s]+)\)|^\[[^\]]+\]:\s*(\S+)", code_free(text), re.M):
        target = target[0] or target[1]
        count += 1
        url, _, frag = target.partition("#")
        why = None
        if url == "":
            if frag not in anchors(text):
                why = "no such heading on this page"
        elif url.startswith(GUIDE):
            m = re.fullmatch(re.escape(GUIDE) + r"(\w+)/index\.html", url)
            if not m or m.group(1) not in modules:
                why = f"no guide module by that name (modules: {', '.join(sorted(modules))})"
            elif frag and frag not in anchors(open(modules[m.group(1)], encoding="utf-8").read()):
                why = f"no such heading in {modules[m.group(1)]}"
        elif url.startswith(SOURCE):
            if url[len(SOURCE):] not in packaged:
                why = "not a file the package ships (cargo package --list)"
        elif url == CRATE:
            pass
        elif url.startswith(("https://docs.rs/rawpost", "https://crates.io/crates/rawpost")):
            why = "an address of rawpost's that this check does not know"
        elif not url.startswith(("https://", "http://")):
            why = "relative: resolves on neither crates.io nor docs.rs"
        if why:
            bad.append((page, target, why))
for page, target, why in bad:
    print(f"{page}: {target}: {why}")
print(f"links: {count} in {len(pages)} pages, {len(bad)} bad")
sys.exit(1 if bad else 0)
