"""The figures against their targets: pass/fail, the JSON numbers and the printed table."""

from __future__ import annotations

import math

import numpy as np

TARGETS = {
    "aperture_r": (">=", 0.6),
    "lip_distance_ratio": ("<=", 0.6),
    "pbm_closed_share": (">=", 0.9),
    "av_offset_difference": ("abs<=", 1),
    "psnr_outside_mouth_db": (">=", 40.0),
    # driven mode (``driven``): any voice, no ground truth for the mouth
    "loudness_r": (">=", 0.35),
    "rest_in_pauses": (">=", 0.8),
    "opening_median_ratio": ("within", (0.75, 1.25)),
    "opening_p90_ratio": ("within", (0.75, 1.25)),
    # the lower face as sharp, next to the untouched upper face, as in the footage itself
    "sharpness_ratio": ("within", (0.85, 1.15)),
}


def json_number(value, digits: int = 4):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def judge(name: str, value) -> bool | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    op, target = TARGETS[name]
    if op == ">=":
        return bool(value >= target)
    if op == "<=":
        return bool(value <= target)
    if op == "within":
        return bool(target[0] <= value <= target[1])
    return bool(abs(value) <= target)


def target_text(name: str) -> str:
    op, target = TARGETS[name]
    if op == "within":
        return f"{target[0]}–{target[1]}"
    return f"|x| <= {target}" if op == "abs<=" else f"{op} {target}"


def figure_entry(name: str, value, **extra) -> dict:
    """A figure for ``eval.json``: its value, target and verdict, and what else explains it."""
    return {"value": json_number(value), "target": target_text(name), "pass": judge(name, value), **extra}


def summary_lines(result: dict) -> list[str]:
    f = result["figures"]

    def show(value, fmt="{:.3f}"):
        return "n/a" if value is None else fmt.format(value)

    def verdict(entry):
        return {True: "pass", False: "MISS", None: "-"}[entry["pass"]]

    ld = f["lip_distance_ratio"]
    pbm = f["pbm_closed_share"]
    av = f["av_offset_difference"]
    ps = f["psnr_outside_mouth_db"]
    ap = f["aperture_r"]
    ji = f["jitter_ratio"]
    rows = [
        ("aperture r vs real", show(ap["value"]), ap["target"], verdict(ap),
         f"loudness-only baseline r = {show(ap['loudness_baseline'])}"),
        ("lip distance ÷ static", show(ld["value"]), ld["target"], verdict(ld),
         f"rendered {show(ld['rendered'])}, static median {show(ld['static_baseline'])}, "
         f"static closed {show(ld['closed_mouth_baseline'])}, loudness {show(ld['loudness_baseline'])} (io); "
         f"library frames chosen knowing the real mouth and pose: "
         f"{show(ld.get('selection_oracles', {}).get('state_and_pose', {}).get('lip_distance_ratio'))}"),
        ("P/B/M closed ±40 ms", show(pbm["value"], "{:.0%}"), pbm["target"], verdict(pbm),
         f"{pbm['closed']}/{pbm['events']} events; real footage {show(pbm['real_footage'], '{:.0%}')}; "
         f"where the real lips closed {show(pbm['on_real_closures'], '{:.0%}')}"),
        ("A/V offset difference", show(av["value"], "{:+d}"), av["target"], verdict(av),
         f"rendered lag {av['rendered_lag']}, real lag {av['real_lag']} frames"),
        ("PSNR outside mouth", show(ps["value"], "{:.1f} dB"), ps["target"], verdict(ps),
         f"worst frame {show(ps['worst_frame_db'], '{:.1f}')} dB"
         + (" (capped: identical)" if ps["capped"] else "")),
        ("lip jitter ÷ real", show(ji["value"], "{:.2f}"), "report", "-",
         f"rendered {show(ji['rendered'], '{:.4f}')}, real {show(ji['real'], '{:.4f}')}"),
    ]
    lines = [f"{'figure':24} {'value':>9}  {'target':>10}  {'':4}  notes"]
    lines += [f"{a:24} {b:>9}  {c:>10}  {d:4}  {e}" for a, b, c, d, e in rows]
    return lines


DRIVEN_FIGURES = ("loudness_r", "rest_in_pauses", "opening_median_ratio", "opening_p90_ratio")
DRIVEN_REFERENCES = (("loudness_baseline", "  loudness only"), ("footage_baseline", "  footage as is"))


def driven_summary_lines(result: dict) -> list[str]:
    """The driven figures, a row per voice and a row per reference mouth under it."""
    own = result["footage"]
    lines = [
        (f"footage: rest {own['rest']:.3f} (from {own['rest_frames']} {own['rest_from']} frames), "
         f"speaking range {own['speaking_range']:.3f} (rest limit {own['rest_limit']:.3f}), "
         f"during speech median {own['speech_median']:.3f} "
         f"p90 {own['speech_p90']:.3f}; {own['frames']} frames, {own['speech_frames']} speech, "
         f"{own['pause_frames']} pause"),
    ]

    def cell(entry: dict, name: str) -> str:
        value = entry["value"]
        shown = "n/a" if value is None else f"{value:.2f}"
        if name == "loudness_r" and entry.get("lag") is not None:
            shown += f" ({entry['lag']:+d})"
        return f"{shown} {({True: 'pass', False: 'MISS', None: '-'})[entry['pass']]}"

    head = ["loudness r (lag)", "rest in pauses", "median ÷ own", "p90 ÷ own", "sharpness ÷ own"]
    def row(label, frames="", speech="", pause="", cells=()):
        return (f"{label[:22]:22} {frames:>6} {speech:>6} {pause:>5}  " + "".join(f"{c:18}" for c in cells)).rstrip()

    lines.append(row("driven by", "frames", "speech", "pause", head))
    lines.append(row("target", cells=[target_text(name) for name in (*DRIVEN_FIGURES, "sharpness_ratio")]))
    for name, voice in result["driven"].items():
        sharp = [cell(voice["sharpness_ratio"], "sharpness_ratio")] if "sharpness_ratio" in voice else []
        lines.append(row(name, voice["frames"], voice["speech_frames"], voice["pause_frames"],
                         [cell(voice[f], f) for f in DRIVEN_FIGURES] + sharp))
        for key, label in DRIVEN_REFERENCES:
            lines.append(row(label, cells=[cell(voice[key][f], f) for f in DRIVEN_FIGURES]))
    return lines


def preparation_line(entry: dict) -> str:
    """What the avatar's preparation decided about the footage's own sound, in one line."""
    prep = entry.get("preparation") or {}
    r = prep.get("own_speech_r")
    line = (f"preparation: mouth timing {prep.get('mouth_timing', '?')}"
            f" (footage sound vs mouth r = {'n/a' if r is None else f'{r:.2f}'})")
    said = [w for w in prep.get("warnings") or [] if "speaker-independent" in w]
    return line + (f"; the report says: \"{said[0]}\"" if said else "")


def footage_audio_summary_lines(result: dict) -> list[str]:
    """The driven tables again for the footage with its sound replaced (silence, music)."""
    lines: list[str] = []
    for kind, entry in (result.get("footage_audio") or {}).items():
        lines.append(f"the same footage with its sound replaced by {kind}, driven by {len(entry['driven'])} voice(s):")
        lines.append(preparation_line(entry))
        lines.extend(driven_summary_lines(entry))
    return lines
