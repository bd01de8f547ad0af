"""The evaluation's pictures: the contact sheet of mouth crops and the aperture plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .metrics import lip_indices

CROP_PX = 128


FACE_SPAN = 3.6  # lip widths: the lower face with the jaw line and what lies beyond it


def mouth_crops(real: np.ndarray, rendered: np.ndarray, landmarks: np.ndarray | None, t: float,
                viseme: str, span: float = 1.9) -> dict:
    """Square crops of the same place in both frames, ``span`` lip widths wide around the
    lips (1.9: the mouth; ``FACE_SPAN``: the lower face down past the chin)."""
    import cv2

    h, w = real.shape[:2]
    if landmarks is not None:
        lips = np.asarray(landmarks)[lip_indices()]
        cx, cy = lips.mean(0)
        side = max(24.0, span * float(np.ptp(lips[:, 0])))
        cy += 0.12 * (side - 1.9 * float(np.ptp(lips[:, 0])))  # a wider crop reaches down to the chin
    else:
        cx, cy, side = w / 2, h * 0.7, min(w, h) / 3
    half = side / 2
    x0 = int(round(min(max(cx - half, 0), max(0, w - side))))
    y0 = int(round(min(max(cy - half, 0), max(0, h - side))))
    x1, y1 = min(w, int(round(x0 + side))), min(h, int(round(y0 + side)))

    def crop(rgb):
        region = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        return cv2.resize(region, (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA)

    return {"real": crop(real), "rendered": crop(rendered), "label": f"{t:6.2f}s {viseme}"}


def contact_sheet(cells: list[dict], path: Path, columns: int = 8,
                  caption: str = "each cell: time, viseme / real (top) / rendered (bottom)") -> None:
    """Real (top) over rendered (bottom) mouth crops with time and viseme, in a grid."""
    from PIL import Image, ImageDraw

    if not cells:
        Image.new("RGB", (CROP_PX, CROP_PX), (40, 40, 40)).save(path)
        return
    label_h, gap = 16, 6
    cell_w, cell_h = CROP_PX, label_h + 2 * CROP_PX
    rows = math.ceil(len(cells) / columns)
    cols = min(columns, len(cells))
    header = 18
    size = (cols * (cell_w + gap) + gap, header + rows * (cell_h + gap) + gap)
    sheet = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 3), caption, fill=(220, 220, 220))
    for i, cell in enumerate(cells):
        x = gap + (i % columns) * (cell_w + gap)
        y = header + gap + (i // columns) * (cell_h + gap)
        draw.text((x + 2, y + 2), cell["label"], fill=(255, 230, 120))
        sheet.paste(Image.fromarray(cell["real"]), (x, y + label_h))
        sheet.paste(Image.fromarray(cell["rendered"]), (x, y + label_h + CROP_PX))
    sheet.save(path)


def aperture_plot(path, *, fps, start, real, rendered, loudness_baseline, static_value, envelope, threshold,
                  checks):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t = start + np.arange(len(real)) / fps
    fig, ax = plt.subplots(figsize=(14, 4.2), dpi=100)
    env = np.asarray(envelope[: len(t)], np.float64)
    if env.size and np.nanmax(env) > 0:
        scale = np.nanpercentile(real, 98) if np.isfinite(real).any() else 1.0
        ax.fill_between(t[: len(env)], 0, env / np.nanmax(env) * scale, color="#cccccc",
                        label="speech envelope (scaled)")
    for check in checks:
        colour = "#98df8a" if check.closed else "#ff9896"
        ax.axvspan(start + check.start, start + check.end, color=colour, alpha=0.5, lw=0)
    ax.plot(t, real, color="black", lw=1.4, label="real")
    ax.plot(t, rendered, color="#d62728", lw=1.2, label="rendered")
    ax.plot(t, loudness_baseline, color="#1f77b4", lw=0.8, alpha=0.7, label="loudness-only baseline")
    if math.isfinite(static_value):
        ax.axhline(static_value, color="#2ca02c", lw=0.8, ls="--", label="static baseline")
    if math.isfinite(threshold):
        ax.axhline(threshold, color="#9467bd", lw=0.8, ls=":", label="closed threshold")
    ax.set_xlabel("time in the video (s); P/B/M phones shaded (green: rendered closed, red: not)")
    ax.set_ylabel("inner-lip gap / inter-ocular")
    ax.set_xlim(t[0], t[-1] if len(t) > 1 else t[0] + 1)
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def language_sheet(driven_folder, output, *, width: int = 1200, seconds_rows: int = 2) -> list[str]:
    """One picture of every driving voice's lower-face sheet (``driven/NAME/face_sheet.png``),
    each cut to its first ``seconds_rows`` rows of cells (the first 8 s at 2 rows), stacked
    under its name, so a page can show a contact sheet per language; the names, in order.
    A ``.jpg`` output keeps the picture small enough for a repository."""
    from pathlib import Path

    from PIL import Image, ImageDraw, ImageFont

    sheets = sorted(p for p in Path(driven_folder).glob("*/face_sheet.png"))
    if not sheets:
        raise FileNotFoundError(f"no driven/NAME/face_sheet.png under {driven_folder}: run engine eval first")
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 22)
    rows = []
    for path in sheets:
        sheet = Image.open(path).convert("RGB")
        sheet = sheet.resize((width, round(sheet.height * width / sheet.width)), Image.LANCZOS)
        # the sheet's caption line, then pairs of cell rows (footage over rendered), each
        # pair as tall as the sheet's cells are wide ×2 plus a label line: 8 cells a row
        pair = round(width / 8 * 2 + width / 8 * 0.1)
        sheet = sheet.crop((0, 0, width, min(sheet.height, round(width * 0.022) + seconds_rows * pair)))
        label = Image.new("RGB", (width, 36), "white")
        ImageDraw.Draw(label).text((8, 6), path.parent.name, fill="black", font=font)
        rows += [label, sheet]
    out = Image.new("RGB", (width, sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        out.paste(row, (0, y))
        y += row.height
    out.save(output, optimize=True, quality=82)
    return [p.parent.name for p in sheets]
