"""Running a program whose output is bounded in time and in size.

``subprocess.run(capture_output=True)`` keeps everything a program prints: ``["yes"]`` as a
password command would fill the memory before its time limit. Here standard output is read
as it comes and the program is killed once it printed more than ``max_output`` bytes; only the
end of its standard error is kept (for messages).
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STDERR_KEPT = 4096
_CHUNK = 65536
_READER_GRACE = 1.0
"""After the program ended, how long its pipes may stay open (a child it left running)."""


class OutputTooLarge(Exception):
    """The program printed more than allowed; it was killed."""


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr_tail: bytes


def run_bounded(arguments: tuple[str, ...], *, cwd: Path, timeout: float,
                max_output: int) -> Finished:
    """Run ``arguments`` with no input; ``subprocess.TimeoutExpired`` after ``timeout``
    seconds, ``OutputTooLarge`` past ``max_output`` bytes of standard output (the program is
    killed in both cases); OSError when it cannot start."""
    process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=cwd)
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = bytearray(), bytearray()
    overflow = threading.Event()

    def read_stdout(pipe: IO[bytes]) -> None:
        while chunk := pipe.read1(_CHUNK):  # type: ignore[attr-defined]
            stdout.extend(chunk)
            if len(stdout) > max_output:
                overflow.set()
                process.kill()
                return

    def read_stderr(pipe: IO[bytes]) -> None:
        while chunk := pipe.read1(_CHUNK):  # type: ignore[attr-defined]
            stderr.extend(chunk)
            del stderr[:-STDERR_KEPT]

    readers = [threading.Thread(target=read, args=(pipe,), daemon=True)
               for read, pipe in ((read_stdout, process.stdout), (read_stderr, process.stderr))]
    for reader in readers:
        reader.start()
    try:
        returncode = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    finally:
        for reader in readers:
            reader.join(_READER_GRACE)
    if overflow.is_set():
        raise OutputTooLarge
    return Finished(returncode, bytes(stdout), bytes(stderr))
