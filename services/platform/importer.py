"""`tenderwatch import PATH...`: send files and folders of source documents to ingest, with progress and a summary.

Each document goes to the ingest service's `POST /v1/documents`, which answers at once with what it made of it
(the notices, whether each was new) or why it refused it; a refused document is also kept in
`documents.received.dlq`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

_SUFFIXES = {".xml": "application/xml", ".json": "application/json", ".csv": "text/csv"}
_CONCURRENCY = 4


@dataclass
class ImportSummary:
    files: int = 0
    notices: int = 0
    duplicates: int = 0
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"{self.files} file(s): {self.notices} notice(s) imported, {self.duplicates} duplicate(s) "
            f"(already imported), {len(self.rejected)} file(s) rejected"
        ]
        reasons = Counter(reason.split(":")[0] for _path, reason in self.rejected)
        if reasons:
            out.append("rejected by reason: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
        out += [f"  rejected {path}: {reason}" for path, reason in self.rejected]
        return out


def collect(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the documents (.xml, .json, .csv) found under the folders named, in order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(dict.fromkeys(files))


class _Progress:
    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.interactive = stream.isatty()
        self.started = time.monotonic()

    def advance(self, path: Path, outcome: str) -> None:
        self.done += 1
        if self.interactive:
            width = 30
            filled = int(width * self.done / self.total)
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  {rate:.1f} files/s  "
                f"{path.name[:40]:<40}"
            )
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {path}: {outcome}\n")
        self.stream.flush()


async def import_files(
    paths: Sequence[Path], *, ingest_url: str, progress: TextIO = sys.stderr, origin: str = "file"
) -> ImportSummary:
    files = collect(paths)
    summary = ImportSummary(files=len(files))
    bar = _Progress(len(files), progress)
    slots = asyncio.Semaphore(_CONCURRENCY)

    async def one(client: httpx.AsyncClient, path: Path) -> None:
        async with slots:
            answer = await client.post(
                "/v1/documents",
                content=await asyncio.to_thread(path.read_bytes),
                headers={
                    "content-type": _SUFFIXES.get(path.suffix.lower(), "application/octet-stream"),
                    "x-filename": path.name,
                    "x-origin": origin,
                },
            )
        payload = answer.json()
        if answer.status_code == 202:
            notices = payload.get("notices") or [payload]
            new = sum(not n["duplicate"] for n in notices)
            summary.notices += new
            summary.duplicates += len(notices) - new
            outcome = f"{new} new, {len(notices) - new} duplicate"
        else:
            reason = f"{payload.get('error', answer.status_code)}: {payload.get('detail', answer.text)}"
            summary.rejected.append((path, reason))
            outcome = f"rejected ({reason})"
        bar.advance(path, outcome)

    async with httpx.AsyncClient(base_url=ingest_url, timeout=120.0, trust_env=False) as client:
        await asyncio.gather(*(one(client, path) for path in files))
    return summary
