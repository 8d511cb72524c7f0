"""Reading recordings: which files a PATH names, and their records in order, lazily (one
chunk decompressed at a time; a part is read whole but kept compressed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tickpipe.errors import ConfigError
from tickpipe.record import format as fmt
from tickpipe.record.writer import PART_SUFFIX


def find_parts(paths: list[str | Path]) -> list[Path]:
    """Each PATH is a part file or a directory of them (its ``*.tpr.zst``, in name order:
    rotated parts sort in recording order). ConfigError naming a PATH that holds none."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.name.endswith(PART_SUFFIX))
            if not found:
                raise ConfigError(f"{p}: no recording parts (*{PART_SUFFIX}) in this directory")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError(f"{p}: no such recording file or directory")
    return out


class PartReader:
    """The records of one part. ``header`` is read at once; iterate for the rest.
    ``truncated`` is True once iteration found the part cut short (kill -9, full disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data = path.read_bytes()
        self.truncated = False
        self.records = 0
        self._chunks = fmt.iter_chunks(self._data)
        try:
            raw, complete = next(self._chunks)
        except StopIteration:
            raise fmt.FormatError(f"{path}: empty file, not a tickpipe recording") from None
        try:
            recs, used = fmt.split_records(raw)
        except fmt.FormatError as exc:
            raise fmt.FormatError(f"{path}: not a tickpipe recording ({exc})") from None
        if not recs or not isinstance(recs[0], fmt.Header) or recs[0].magic != fmt.MAGIC:
            raise fmt.FormatError(f"{path}: not a tickpipe recording (no header record)")
        self.header: fmt.Header = recs[0]
        if self.header.format_version > fmt.FORMAT_VERSION:
            raise fmt.FormatError(
                f"{path}: recording format {self.header.format_version} is newer than this "
                f"tickpipe reads ({fmt.FORMAT_VERSION})"
            )
        self._first = recs[1:]
        if not complete or used != len(raw):
            self.truncated = True
            self._chunks = iter(())

    def __iter__(self) -> Iterator[fmt.Record]:
        for rec in self._first:
            self.records += 1
            yield rec
        self._first = []
        for raw, complete in self._chunks:
            recs, used = fmt.split_records(raw)
            for rec in recs:
                self.records += 1
                yield rec
            if not complete or used != len(raw):
                self.truncated = True
                return
