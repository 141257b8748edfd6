"""``python -m skinlib demo`` runs its kernels over unix sockets, so ipykernel stays quiet.

Over TCP every kernel printed "[IPKernelApp] WARNING | Kernel is running over TCP without
encryption ..." to the terminal, once per notebook.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

import skinlib.__main__ as cli

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the kernels use TCP on Windows")

# Runs inside the kernel: how the kernel itself was told to listen.
WHERE = "from ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\nprint(app.transport, app.ip)"


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.fixture
def runtime_dirs(monkeypatch) -> list[Path]:
    """The temporary folders the demo's kernel managers were given, in order."""
    seen: list[Path] = []
    real = cli._kernel_manager

    def spy(runtime_dir: Path, *args, **kwargs):
        seen.append(runtime_dir)
        return real(runtime_dir, *args, **kwargs)

    monkeypatch.setattr(cli, "_kernel_manager", spy)
    return seen


def test_kernel_manager_uses_ipc_in_its_folder(tmp_path):
    km = cli._kernel_manager(tmp_path)
    assert km.transport == "ipc"
    assert Path(km.ip).parent == tmp_path
    assert Path(km.connection_file).parent == tmp_path
    assert km.kernel_name == "python3"


def test_demo_kernel_runs_over_ipc_without_warning(tmp_path, capfd, runtime_dirs):
    nb = _notebook(WHERE, "import os\nprint(os.getcwd())")
    cli._execute_notebook(nb, tmp_path)

    transport, ip = nb.cells[0].outputs[0]["text"].split()
    assert transport == "ipc"
    assert Path(nb.cells[1].outputs[0]["text"].strip()) == tmp_path  # the notebook's folder, as before
    (runtime,) = runtime_dirs
    assert Path(ip).parent == runtime
    assert not runtime.exists(), "connection file and sockets are left behind"
    out, err = capfd.readouterr()  # includes what the kernel process wrote to the terminal
    assert "without encryption" not in out + err
    assert "WARNING" not in err


def test_failing_cell_still_shuts_the_kernel_down(tmp_path, capfd, runtime_dirs):
    nb = _notebook("raise ValueError('boom')", "print('not reached')")
    with pytest.raises(CellExecutionError, match="boom"):
        cli._execute_notebook(nb, tmp_path)
    assert nb.cells[0].outputs[0]["ename"] == "ValueError"
    assert not runtime_dirs[0].exists()
    assert "without encryption" not in "".join(capfd.readouterr())
