"""`gptkit report`: one self-contained HTML file with the run's pictures embedded and its text escaped."""

import base64
import io
import re

from PIL import Image

from gptkit.cli import main


def test_report_is_one_self_contained_page(trained_run, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(trained_run), "--out", str(out), "--prompt", "O'er", "--samples", "2"]) == 0
    page = out.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert [alt for alt, _ in images] == [
        "loss curves",
        "learning rate",
        "attention, layer 0",
        "attention, layer 1",
        "token embeddings",
    ]
    for _, data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.verify()
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: it reads offline
    assert "<pre>O&#x27;er" in page  # text is escaped (never read as markup)
    assert page.count("<pre>") == 2
    assert "final val loss" in page and "n_layer" in page


def test_report_refuses_other_formats_and_non_runs(trained_run, tmp_path, capsys):
    assert main(["report", str(trained_run), "--out", str(tmp_path / "r.pdf")]) == 2
    assert "ending in .html" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()
