"""Media I/O for the engine (PyAV): sniffing, probing, decoding, encoding, normalising.

Everything here works on local paths only, and inputs from creators are hostile until
proven otherwise: types come from magic bytes (``sniff_type``), untrusted files are probed in a
time-limited child process (``probe``), and frames are streamed, never held whole.
Callers use the names re-exported here (``from engine import media``), not the submodules.
"""

from .colour import BoxedRgbToFrame, frame_to_rgb, rgb_to_frame, source_colorspace
from .normalise import MAX_COPY_KEYFRAME_SECONDS, PreviewClip, normalise_video
from .probing import MediaInfo, open_input, probe, probe_in_process, unreadable_error
from .reader import DEFAULT_CACHE_BYTES, VideoReader, iter_video_frames, read_frames_at, sample_times
from .sniff import (
    EXTENSION_FOR_TYPE,
    TYPE_DESCRIPTIONS,
    TYPE_FOR_EXTENSION,
    content_type_for_name,
    is_image_type,
    sniff_type,
)
from .stills import image_size, load_image_rgb, moov_before_mdat, write_poster, write_preview, write_still_video
from .writer import DEFAULT_CRF, DEFAULT_PRESET, VideoWriter, even_size, rational_fps, standard_rate

__all__ = [
    "BoxedRgbToFrame",
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "EXTENSION_FOR_TYPE",
    "MAX_COPY_KEYFRAME_SECONDS",
    "TYPE_DESCRIPTIONS",
    "TYPE_FOR_EXTENSION",
    "MediaInfo",
    "VideoReader",
    "VideoWriter",
    "content_type_for_name",
    "even_size",
    "frame_to_rgb",
    "is_image_type",
    "iter_video_frames",
    "image_size",
    "load_image_rgb",
    "moov_before_mdat",
    "normalise_video",
    "PreviewClip",
    "open_input",
    "probe",
    "probe_in_process",
    "rational_fps",
    "read_frames_at",
    "rgb_to_frame",
    "sample_times",
    "sniff_type",
    "source_colorspace",
    "standard_rate",
    "unreadable_error",
    "write_poster",
    "write_preview",
    "write_still_video",
]
