"""The results folder: Parquet part files, each written whole and atomically, so a job can be killed at
any moment and resumed.

Layout: `RESULTS/_job.json` (`medtk-batch/1`) and `RESULTS/part-000000.parquet`, `part-000001...`. Any
Parquet reader takes the folder as one table (pyarrow, pandas, DuckDB, Spark). A part is written to a
temporary name, fsynced and renamed, then the folder is fsynced: a part is either whole or absent, and a
kill -9 loses at most the rows not yet in a part. On resume the source ids of every part are the rows
done; the store also refuses to write a source id twice, so each row is in the folder exactly once
whatever the executor retried. The ids seen are held in memory (a set of strings: tens of MB for a
million images; the images themselves never are).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from medtk.batch.rows import arrow_schema
from medtk.errors import ConfigError, DataError
from medtk.io import atomic_write_json, fsync_dir
from medtk.schema.batch import BatchJob

log = logging.getLogger(__name__)

JOB_FILE = "_job.json"
PART_GLOB = "part-*.parquet"


def is_results(path: Path) -> bool:
    """Whether `path` is a batch job's results folder."""
    return Path(path).is_dir() and (Path(path) / JOB_FILE).is_file()


def read_job(path: Path) -> BatchJob:
    file = Path(path) / JOB_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{file}: not a readable results job file ({type(error).__name__}: {error})") from None
    return BatchJob.from_json(data, file)


def part_files(path: Path) -> list[Path]:
    return sorted(Path(path).glob(PART_GLOB))


class ResultsStore:
    """Opens (or resumes) a results folder for `job`; `write` commits rows as one part."""

    def __init__(self, path: Path, job: BatchJob) -> None:
        self.path = Path(path)
        self.job = job
        self.done: set[str] = set()
        self.duplicates = 0
        self.errors = 0
        self._next = 0
        self._schema = arrow_schema(job.model)
        if self.path.exists():
            self._resume()
        else:
            self.path.mkdir(parents=True)
        atomic_write_json(self.path / JOB_FILE, replace(job, complete=False, rows=None, errors=None).to_json())

    def _resume(self) -> None:
        import pyarrow.parquet as pq

        if not self.path.is_dir():
            raise ConfigError(f"--out {self.path}: exists and is not a folder; give a new results folder")
        if not is_results(self.path):
            if any(self.path.iterdir()):
                raise ConfigError(f"--out {self.path}: is a folder that holds other files, not a medtk results "
                                  "folder; give a new or empty folder")
            return
        previous = read_job(self.path)
        if previous.model.sha256 != self.job.model.sha256:
            raise ConfigError(f"--out {self.path}: holds rows of another model (sha256 {previous.model.sha256[:12]}..., "
                              f"this one {self.job.model.sha256[:12]}...); give a new results folder")
        if previous.source != self.job.source:
            raise ConfigError(f"--out {self.path}: holds rows of --data {previous.source!r}, not {self.job.source!r}; "
                              "give a new results folder")
        for stale in self.path.glob(".part-*.tmp"):
            stale.unlink()  # a part a kill interrupted before its rename: its rows are redone
        for part in part_files(self.path):
            table = pq.read_table(part, columns=["source_id", "error"])
            self.done.update(table.column("source_id").to_pylist())
            self.errors += len(table) - table.column("error").null_count
            self._next = max(self._next, int(part.stem.split("-")[1]) + 1)
        log.info("resuming %s: %d rows already done", self.path, len(self.done))

    def write(self, rows: list[dict[str, Any]]) -> int:
        """Commit the rows whose source id is not in the folder yet, as one part; returns how many."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        fresh = []
        for row in rows:
            if row["source_id"] in self.done:
                self.duplicates += 1
                continue
            self.done.add(row["source_id"])
            fresh.append(row)
        if not fresh:
            return 0
        table = pa.Table.from_pylist(fresh, schema=self._schema)
        final = self.path / f"part-{self._next:06d}.parquet"
        temporary = self.path / f".{final.name}.tmp"
        with open(temporary, "wb") as stream:
            pq.write_table(table, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, final)
        fsync_dir(self.path)
        self._next += 1
        self.errors += sum(row["error"] is not None for row in fresh)
        return len(fresh)

    def finish(self) -> BatchJob:
        """Mark the job complete (every item of the source has its row)."""
        done = replace(self.job, complete=True, rows=len(self.done), errors=self.errors)
        atomic_write_json(self.path / JOB_FILE, done.to_json())
        return done

