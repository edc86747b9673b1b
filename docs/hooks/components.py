"""MkDocs hook: adds the components reference, a page per kind, written from the
installed components by ``clustergrid.reference`` each time the manual is built."""

from __future__ import annotations

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    from clustergrid.reference import pages

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files
