"""``attrib serve RUN --port P`` as a user runs it: a process that says where it serves, on
the loopback address, and answers there."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request

from tests.serve.conftest import free_port


def test_attrib_serve_says_where_it_serves_and_answers_there(image_run):
    port = free_port()
    command = [sys.executable, "-m", "attrib.cli", "serve", str(image_run), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
        reader.start()
        reader.join(120)
        assert lines == [f"serving on http://127.0.0.1:{port}\n"], process.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=30) as answer:
            info = json.load(answer)
        assert [r["name"] for r in info["runs"]] == ["run"] and info["model"] is None
    finally:
        process.terminate()
        process.wait(30)
    assert process.stderr.read() == ""  # no warning: the loopback address


def test_attrib_serve_refuses_a_folder_without_a_run(tmp_path, capsys):
    from attrib.cli.main import main

    assert main(["serve", str(tmp_path), "--port", str(free_port())]) == 1
    assert "manifest.json" in capsys.readouterr().err
