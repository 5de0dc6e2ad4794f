"""Unreadable files and folders, checked for real: the tests run as root, where chmod 000 stops nothing, so a
forked child drops to user nobody before walking and reading. (Run as any other user, the hostile corpus test
meets the same entries unreadable and expects these failures.)"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from indexes.files import walk
from indexes.ingest import Ingester
from indexes.records import IngestReport

NOBODY = 65534


def as_nobody(fn) -> dict:
    """fn() run in a forked child as uid/gid nobody; its JSON-able result comes back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = json.dumps(fn())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload, code = json.dumps({"error": f"{type(exc).__name__}: {exc}"}), 1
        with os.fdopen(w, "w") as out:
            out.write(payload)
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as got:
        data = got.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can become nobody")
def test_unreadable_entries_fail_with_permission_denied_for_an_ordinary_user():
    base = Path(tempfile.mkdtemp(prefix="agentmem-perms-"))
    locked, folder = base / "locked.txt", base / "locked-dir"
    try:
        base.chmod(0o755)  # nobody may enter the folder, not its locked parts
        (base / "ok.txt").write_text("Readable by all.\n")
        locked.write_text("Readable by root only.\n")
        locked.chmod(0)
        folder.mkdir()
        (folder / "inner.txt").write_text("Never listed.\n")
        folder.chmod(0)

        def walk_and_read() -> dict:
            found = walk([base], max_bytes=1000)
            report = IngestReport(pool="p")
            read = [c.path for c in found.files if Ingester._read(c, report) is not None]
            return {"read": read, "walk_failed": [(i.path, i.code, i.reason) for i in found.failed],
                    "read_failed": [(i.path, i.code, i.reason) for i in report.failed]}

        got = as_nobody(walk_and_read)
        assert "error" not in got, got
        assert got["read"] == [str(base / "ok.txt")]
        assert got["walk_failed"] == [[str(folder), "permission", "permission denied (cannot list the folder)"]]
        assert got["read_failed"] == [[str(locked), "permission", "permission denied"]]
    finally:
        if folder.exists():
            folder.chmod(0o755)
        shutil.rmtree(base)
