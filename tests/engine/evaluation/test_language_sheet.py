"""`engine eval-sheet`: every driving voice's lower-face sheet in one picture, under its name."""

import numpy as np
from PIL import Image

from engine.__main__ import main


def test_it_stacks_each_voices_sheet_under_its_name(tmp_path):
    for name, shade in (("speech_de", 60), ("speech_ja", 200)):
        folder = tmp_path / "driven" / name
        folder.mkdir(parents=True)
        Image.new("RGB", (800, 200), (shade, shade, shade)).save(folder / "face_sheet.png")
    out = tmp_path / "languages.png"  # PNG here: exact shades to compare
    assert main(["eval-sheet", str(tmp_path), "-o", str(out)]) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (2 * (36 + 300), 1200, 3)
    assert abs(int(sheet[36 + 150, 600, 0]) - 60) < 3 and abs(int(sheet[2 * 36 + 300 + 150, 600, 0]) - 200) < 3
    assert (sheet[:36] < 128).any()  # the name is written above its sheet
