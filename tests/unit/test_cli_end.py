"""``steps.cli.app.end``: the process ends with the code given, its atexit handlers run and
its output is flushed, but the interpreter's teardown is skipped; a live thread or a stream
that cannot be flushed gets what Python's own exit would give."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **kwargs: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONUNBUFFERED", None)  # buffered output, as a step's to a pipe or file
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=kwargs.pop("stdout", subprocess.PIPE),  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


HANDLERS = """
import atexit, sys
from steps.cli.app import end

class Torn:
    def __del__(self):
        print("teardown ran", flush=True)

kept = Torn()  # a module global: only the interpreter's teardown deletes it
atexit.register(print, "registered before")
sys.stdout.write("x" * 200000 + "\\n")  # more than any buffer: flushed at the end
end({code})
"""


def test_the_code_the_handlers_and_the_output_without_the_teardown() -> None:
    for code in (0, 3, 75):
        proc = _python(HANDLERS.format(code=code))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        lines = out.splitlines()
        assert lines[0] == "x" * 200000
        assert "registered before" in lines
        assert "teardown ran" not in out


def test_python_ends_the_same_script_with_its_teardown() -> None:
    """The control: without end(), the same object is torn down (so the test above can
    fail)."""
    proc = _python(HANDLERS.replace("end({code})", "sys.exit(3)"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "teardown ran" in out and "registered before" in out


def test_a_thread_still_running_is_waited_for() -> None:
    proc = _python(
        "import threading, time\n"
        "from steps.cli.app import end\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "end(4)\n"
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert out.splitlines() == ["thread done"]


def test_output_that_cannot_be_flushed_is_exit_120_as_with_python() -> None:
    """A reader that went away: the buffered rest cannot be written."""
    script = "import sys, time\n{imp}time.sleep(0.5)\nsys.stdout.write('x')\n{ending}\n"
    codes = []
    for imp, ending in (("from steps.cli.app import end\n", "end(0)"), ("", "sys.exit(0)")):
        read, write = os.pipe()
        with os.fdopen(write, "w") as out:
            proc = _python(script.format(imp=imp, ending=ending), stdout=out)
        os.close(read)  # before the child writes: its flush meets a closed pipe
        time.sleep(0.1)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
        codes.append(proc.returncode)
    assert codes == [120, 120]


def test_a_profiled_run_ends_as_python_does_so_the_profile_is_written(tmp_path: Path) -> None:
    script = tmp_path / "step.py"
    script.write_text("from steps.cli.app import end\nend(0)\n", encoding="utf-8")
    out = tmp_path / "step.prof"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
