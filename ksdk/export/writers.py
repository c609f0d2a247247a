"""Record writers (JSONL, Parquet) that write to a temp file beside the target and rename only on commit."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from ksdk.errors import KsdkError

FORMATS = ("jsonl", "parquet")


class RawJson(str):
    """A field value that already is JSON text (a stored verdict): JSONL embeds it as is, Parquet stores the text."""


class ExportError(KsdkError):
    """An export could not be written (bad output path, missing optional dependency)."""


class _AtomicFile:
    """A temp file in the target's directory; `commit` renames it over the target, `abort` removes it."""

    def __init__(self, target: Path):
        self.target = target
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise ExportError(f"output directory does not exist: {parent} (create it first)")
        if target.is_dir():  # found now, not by the final rename after all the work
            raise ExportError(f"--out {target} is a directory; give a file path such as {target / 'data.jsonl'}")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> None:
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


class RecordWriter:
    """Writes dict records incrementally; nothing appears at `path` until `commit`."""

    def __init__(self, path: Path):
        self.path = path
        self._file = _AtomicFile(path)
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Flush and close the temp file (idempotent)."""
        self._close()

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._close()
        self._file.commit()

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self._close()
        finally:
            self._file.abort()


class JsonlWriter(RecordWriter):
    """One JSON object per line, UTF-8."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._fh = open(self._file.tmp, "w", encoding="utf-8", buffering=1 << 20)

    def write(self, record: dict[str, Any]) -> None:
        raw = [(k, v) for k, v in record.items() if isinstance(v, RawJson)]
        if not raw:
            self._fh.write(json.dumps(record, ensure_ascii=False))
        else:  # splice stored JSON in verbatim: re-parsing and re-encoding it would double the export's cost
            rest = {k: v for k, v in record.items() if not isinstance(v, RawJson)}
            text = json.dumps(rest, ensure_ascii=False)
            self._fh.write(text[:-1])
            for k, v in raw:
                self._fh.write(f"{', ' if rest else ''}{json.dumps(k)}: {v}")
                rest = True
            self._fh.write("}")
        self._fh.write("\n")
        self.count += 1

    def _close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class ParquetWriter(RecordWriter):
    """Row groups of `batch` records through pyarrow; nested fields follow the given schema."""

    def __init__(self, path: Path, schema_factory: Callable[[Any], Any], batch: int = 2000):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            from ksdk.extras import install_line

            raise ExportError(f"Parquet output needs pyarrow, not installed here: {install_line('parquet')} "
                              "(or use --format jsonl)") from None
        super().__init__(path)
        self._pa = pa
        self.schema = schema_factory(pa)
        self._writer: Optional[Any] = pq.ParquetWriter(str(self._file.tmp), self.schema, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self.batch = batch

    def write(self, record: dict[str, Any]) -> None:
        self._rows.append({k: str(v) if isinstance(v, RawJson) else v for k, v in record.items()})
        self.count += 1
        if len(self._rows) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self._rows and self._writer is not None:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def _close(self) -> None:
        if self._writer is not None:
            try:
                self._flush()
            finally:
                self._writer.close()
                self._writer = None


def open_writer(path: Path, fmt: str, schema_factory: Callable[[Any], Any]) -> RecordWriter:
    """A writer for `fmt` ('jsonl' or 'parquet') at `path`."""
    if fmt == "jsonl":
        return JsonlWriter(path)
    if fmt == "parquet":
        return ParquetWriter(path, schema_factory)
    raise ExportError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")


def sibling(path: Path, tag: str) -> Path:
    """`data.jsonl` + 'val' -> `data.val.jsonl` (the tag goes before the last suffix)."""
    if path.suffix:
        return path.with_name(f"{path.stem}.{tag}{path.suffix}")
    return path.with_name(f"{path.name}.{tag}")


class AtomicText:
    """A small text file (the dataset card) written with the same commit/abort discipline."""

    def __init__(self, path: Path):
        self._file = _AtomicFile(path)
        self.path = path

    def write(self, text: str) -> None:
        self._file.tmp.write_text(text, encoding="utf-8")

    def commit(self) -> None:
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()
