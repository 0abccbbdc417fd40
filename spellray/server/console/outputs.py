"""A run's outputs as the run page's tree: folders first, then files, each file with its
size and the path its download link names."""

from __future__ import annotations

from dataclasses import dataclass, field

from spellray.schemas import OutputFile


@dataclass
class Folder:
    name: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[OutputFile] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.files) + sum(f.count for f in self.folders.values())

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files) + sum(f.bytes for f in self.folders.values())


def output_tree(outputs: list[OutputFile]) -> Folder:
    root = Folder("")
    for item in sorted(outputs, key=lambda o: o.path):
        *parents, _ = item.path.split("/")
        folder = root
        for name in parents:
            folder = folder.folders.setdefault(name, Folder(name))
        folder.files.append(item)
    return root
