#!/usr/bin/env python3
"""The layers of src/ as the build enforces them (docs/architecture.md,
"The build enforces the layers"):

- the arrows declared in src/CMakeLists.txt (tern_add_layer ... DEPENDS)
  are the ones the table in docs/architecture.md lists;
- each layer's sources, and the compiler plugin's, are compiled with
  include directories that reach exactly the folders of src/ below it
  (its own, and those its arrows lead to), read from BUILD/layers.json.

    layers.py --source DIR --build DIR
"""

import argparse
import json
import os
import re
import sys

LAYER_CALL = re.compile(r"^tern_add_layer\((\w+)([^)]*)\)", re.M)
DOC_ROW = re.compile(r"^\| `tern::(\w+)`[^|]*\|([^|]*)\|", re.M)
PLUGIN_ROW = re.compile(r"^\| `tern-compiler`[^|]*\|([^|]*)\|", re.M)


def declared(source):
    """{layer: set of layers it links} from src/CMakeLists.txt."""
    with open(os.path.join(source, "src", "CMakeLists.txt")) as f:
        text = f.read()
    arrows = {}
    for name, args in LAYER_CALL.findall(text):
        words = args.split()
        deps = set()
        if "DEPENDS" in words:
            for w in words[words.index("DEPENDS") + 1:]:
                if w.isupper():  # the next keyword
                    break
                deps.add(w)
        arrows[name] = deps
    plugin = re.search(r"target_link_libraries\(tern-compiler PRIVATE ([^)]*)\)", text)
    arrows["tern-compiler"] = {w[len("tern::"):] for w in plugin.group(1).split()
                               if w.startswith("tern::")} if plugin else set()
    return arrows


def documented(source):
    """{layer: set of layers it links} from the table in docs/architecture.md."""
    with open(os.path.join(source, "docs", "architecture.md")) as f:
        text = f.read()

    def names(cell):
        # "wasi, snapshot (the WASI state is a snapshot section)" -> {wasi, snapshot}
        cell = re.sub(r"\([^)]*\)", "", cell)
        return {w.strip() for w in cell.split(",") if w.strip()}
    rows = {name: names(cell) for name, cell in DOC_ROW.findall(text)}
    plugin = PLUGIN_ROW.search(text)
    if plugin:
        rows["tern-compiler"] = names(plugin.group(1))
    return rows


def reachable(arrows, start):
    seen, todo = set(), [start]
    while todo:
        layer = todo.pop()
        for d in arrows.get(layer, ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    problems = []

    arrows = declared(args.source)
    doc = documented(args.source)
    for layer in sorted(set(arrows) | set(doc)):
        if arrows.get(layer) != doc.get(layer):
            problems.append(f"{layer}: src/CMakeLists.txt links {sorted(arrows.get(layer, []))}, "
                            f"docs/architecture.md says {sorted(doc.get(layer, []))}")

    folders = {d for d in os.listdir(os.path.join(args.source, "src"))
               if os.path.isdir(os.path.join(args.source, "src", d))}
    with open(os.path.join(args.build, "layers.json")) as f:
        include_dirs = {k: [d for d in v.split("|") if d] for k, v in json.load(f).items()}
    for target, dirs in sorted(include_dirs.items()):
        visible = {f for f in folders for d in dirs if os.path.isdir(os.path.join(d, f))}
        own = {target} if target in folders else set()
        expected = (own | reachable(arrows, target)) & folders
        if visible != expected:
            problems.append(f"{target}: its sources see {sorted(visible)}, "
                            f"its arrows allow {sorted(expected)}")

    for p in problems:
        print(f"layers: {p}")
    if problems:
        return 1
    print(f"layers: {len(include_dirs)} targets see exactly the layers below them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
