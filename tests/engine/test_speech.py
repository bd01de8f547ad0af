"""engine.speech: real espeak-ng synthesis and real PyAV decoding, no mocks."""

from __future__ import annotations

import subprocess
import sys
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from engine import speech
from engine.errors import InputRejected

REPO = Path(__file__).resolve().parents[2]
SENTENCE = "Bob met Pam by the maple bench, and they talked about the weather."


def _encode(path: Path, samples: np.ndarray, sample_rate: int, container: str, codec: str) -> Path:
    """Write mono float samples with PyAV in the given container/codec."""
    rates = {"libopus": 48000, "wmav2": 22050}
    rate = rates.get(codec, sample_rate)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec not in ("pcm_s16le",):
            stream.bit_rate = 64000
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        stream.codec_context.open()
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name,
            layout="mono",
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _rejected(call, *args, field: str, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.endswith(".") and message[0].isupper() and "\n" not in message
    return caught.value


@pytest.fixture(scope="module")
def spoken() -> speech.Speech:
    return speech.synthesize(SENTENCE)


# ----------------------------------------------------------------------------- voices


def test_voices_offer_male_and_female_per_language_sorted():
    voices = speech.list_voices()
    assert len(voices) > 100
    assert voices == sorted(voices, key=lambda v: (v.language.lower(), v.name))
    by_id = {v.id: v for v in voices}
    assert by_id["en-us"].language == "en-US" and by_id["en-us"].gender == "male"
    assert by_id["en-us+f3"].gender == "female"
    assert by_id["en-us+f3"].name == "English (America) — female 3"
    assert by_id["fr"].language == "fr-FR"
    for base in (v for v in voices if "+" not in v.id):
        genders = {v.gender for v in voices if v.id.split("+")[0] == base.id}
        assert genders == {"male", "female"}, base


def test_every_listed_voice_speaks_its_sample_sentence():
    for voice in speech.list_voices():
        result = speech.synthesize(speech.sample_sentence(voice), voice=voice.id)
        assert result.duration > 0.5, voice
        assert any(p.phoneme != speech.PAUSE for p in result.phonemes), voice


def test_sample_sentence_follows_language_with_english_fallback():
    assert speech.sample_sentence(speech.Voice("de", "German — male", "de", "male")).startswith("Hallo")
    assert speech.sample_sentence(speech.Voice("xx", "X", "xx", "male")).startswith("Hello")


def test_female_variant_sounds_higher():
    def median_pitch(samples: np.ndarray, rate: int) -> float:
        # autocorrelation pitch of voiced 40 ms windows
        window = int(0.04 * rate)
        pitches = []
        for start in range(0, len(samples) - window, window):
            chunk = samples[start : start + window]
            if np.sqrt(np.mean(chunk**2)) < 0.05:
                continue
            corr = np.correlate(chunk, chunk, "full")[window - 1 :]
            lo, hi = rate // 400, rate // 70
            pitches.append(rate / (lo + int(np.argmax(corr[lo:hi]))))
        return float(np.median(pitches))

    male = speech.synthesize(SENTENCE, voice="en-us")
    female = speech.synthesize(SENTENCE, voice="en-us+f3")
    assert median_pitch(female.samples, female.sample_rate) > 1.3 * median_pitch(
        male.samples, male.sample_rate
    )


# ----------------------------------------------------------------------------- timelines


def test_phoneme_timeline_covers_the_audio(spoken):
    events = spoken.phonemes
    assert events[0].start == 0.0
    assert events[-1].end == pytest.approx(spoken.duration, abs=1e-9)
    for before, after in zip(events, events[1:]):
        assert before.end == pytest.approx(after.start, abs=1e-9)
        assert before.start < before.end
    spoken_phonemes = [p.phoneme for p in events if p.phoneme != speech.PAUSE]
    assert spoken_phonemes[:3] == ["b", "0", "b"]
    assert all("'" not in p and "," not in p for p in spoken_phonemes)
    # phonemes are where the sound is: voiced phonemes carry energy
    rate = spoken.sample_rate
    vowels = [p for p in events if p.phoneme in ("E", "a", "aI", "eI", "0")]
    for vowel in vowels:
        part = spoken.samples[int(vowel.start * rate) : int(vowel.end * rate)]
        assert np.sqrt(np.mean(part**2)) > 0.02, vowel


def test_word_events_fall_inside_the_audio_in_order(spoken):
    words = spoken.words
    assert [w.text for w in words] == SENTENCE.replace(",", "").rstrip(".").split()
    for word in words:
        assert 0.0 <= word.start < word.end <= spoken.duration
    for before, after in zip(words, words[1:]):
        assert before.end <= after.start + 1e-9


def test_phoneme_starts_are_sample_exact(spoken):
    rate = spoken.sample_rate
    for event in spoken.phonemes:
        assert event.start * rate == pytest.approx(round(event.start * rate), abs=1e-6)


def test_speed_changes_duration():
    fast = speech.synthesize(SENTENCE, speed=1.5).duration
    normal = speech.synthesize(SENTENCE, speed=1.0).duration
    slow = speech.synthesize(SENTENCE, speed=0.5).duration
    assert fast < normal * 0.8
    assert slow > normal * 1.5


def test_ssml_break_adds_half_a_second_of_silence():
    plain = speech.synthesize("<speak>Hello there my friend</speak>")
    paused = speech.synthesize('<speak>Hello there <break time="500ms"/> my friend</speak>')
    silence = lambda result: sum(  # noqa: E731
        p.end - p.start for p in result.phonemes if p.phoneme == speech.PAUSE
    )
    assert silence(paused) - silence(plain) == pytest.approx(0.5, abs=0.03)
    # the rest is espeak lengthening the word before the pause, as at a comma
    assert 0.45 < paused.duration - plain.duration < 0.75
    pauses = [p for p in paused.phonemes if p.phoneme == speech.PAUSE and p.end - p.start > 0.4]
    assert len(pauses) == 1
    gap = pauses[0]
    assert gap.end - gap.start == pytest.approx(0.5, abs=0.03)
    rate = paused.sample_rate
    middle = paused.samples[int((gap.start + 0.05) * rate) : int((gap.end - 0.05) * rate)]
    assert np.abs(middle).max() < 0.01
    friend = [w for w in paused.words if w.text == "my"][0]
    assert friend.start >= gap.end - 1e-9


def test_ssml_prosody_say_as_and_espeak_phonemes():
    text = (
        '<speak><prosody rate="slow" pitch="high">Slow words</prosody> '
        '<say-as interpret-as="characters">abc</say-as> and a '
        '<phoneme alphabet="x-espeak" ph="t@m\'A:toU">tomato</phoneme>.</speak>'
    )
    result = speech.synthesize(text)
    phonemes = [p.phoneme for p in result.phonemes]
    assert "A:" in phonemes  # the British "tomato" from the ph attribute, not "eI"
    words = [w.text for w in result.words]
    assert words[:2] == ["Slow", "words"] and words[-1] == "tomato"
    assert "dot" not in " ".join(phonemes)  # no stray "." read aloud after the element
    assert phonemes[-1] == speech.PAUSE and "d" not in phonemes[-4:]


def test_ssml_words_are_unescaped():
    result = speech.synthesize("<speak>Salt &amp; pepper</speak>")
    assert [w.text for w in result.words] == ["Salt", "&", "pepper"]


def test_volume_is_louder_and_never_clips():
    quiet = speech.synthesize(SENTENCE, volume=0).samples
    loud = speech.synthesize(SENTENCE, volume=10).samples
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(loud) > 1.8 * rms(quiet)
    assert np.abs(loud).max() < 1.0
    assert speech.synthesize(SENTENCE, volume=5).samples.dtype == np.float32


def test_pitch_parameter_is_applied():
    low = speech.synthesize(SENTENCE, pitch=10).samples
    high = speech.synthesize(SENTENCE, pitch=90).samples
    crossings = lambda x: int(np.sum(np.abs(np.diff(np.sign(x))) > 0))  # noqa: E731
    assert crossings(high) > crossings(low)


def test_synthesis_is_thread_safe_and_repeatable():
    expected = speech.synthesize(SENTENCE)
    results: list[speech.Speech] = []

    def worker():
        results.append(speech.synthesize(SENTENCE))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    # espeak's pitch flutter carries its phase from call to call: timings agree to a few ms
    for result in results:
        assert result.duration == pytest.approx(expected.duration, abs=0.02)
        assert [p.phoneme for p in result.phonemes] == [p.phoneme for p in expected.phonemes]
        for mine, theirs in zip(result.phonemes, expected.phonemes):
            assert mine.start == pytest.approx(theirs.start, abs=0.02)


def test_thirty_second_script_is_fast():
    import time

    text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 8)
    began = time.perf_counter()
    result = speech.synthesize(text)
    assert result.duration > 25
    assert time.perf_counter() - began < 2.0


# ----------------------------------------------------------------------------- bad scripts


@pytest.mark.parametrize("text", ["", "   ", "\n\t  "])
def test_empty_script_is_rejected(text):
    error = _rejected(speech.synthesize, text, field="script")
    assert "empty" in str(error)


def test_short_and_long_scripts_are_rejected_with_counts():
    error = _rejected(speech.validate_script, "  Hi! ", field="script")
    assert str(error) == "The script is 3 characters long; it needs at least 4."
    error = _rejected(speech.validate_script, "a" * 2315, field="script")
    assert str(error) == "The script is 2,315 characters long; keep it to 2,000 or fewer."
    assert speech.validate_script("  " + "é" * 2000 + "  ") == "é" * 2000  # unicode chars
    speech.validate_script("<speak>" + "a" * 1990 + '<break time="1s"/></speak>')  # tags free


def test_invalid_ssml_names_line_and_column():
    error = _rejected(speech.validate_script, "<speak>Hello <b>there</speak>", field="script")
    assert str(error) == "The script's SSML is not valid at line 1, column 24: mismatched tag."
    error = _rejected(speech.validate_script, "<speak>\nHello &nbsp; there</speak>", field="script")
    assert "line 2, column 7" in str(error)
    _rejected(speech.validate_script, "<speak>  <break time='1s'/> </speak>", field="script")


def test_bad_voice_speed_volume_pitch_are_rejected():
    assert "voice" in str(_rejected(speech.synthesize, SENTENCE, voice="xx-klingon", field="voice"))
    _rejected(speech.synthesize, SENTENCE, voice="en-us+nosuchvariant", field="voice")
    for speed in (0.49, 1.51, float("nan"), "fast"):
        _rejected(speech.synthesize, SENTENCE, speed=speed, field="speed")
    for volume in (-1, 11, 2.5):
        _rejected(speech.synthesize, SENTENCE, volume=volume, field="volume")
    _rejected(speech.synthesize, SENTENCE, pitch=101, field="pitch")
    speech.synthesize(SENTENCE, speed=0.5, volume=10, pitch=0)  # the edges are allowed


# ----------------------------------------------------------------------------- audio files


@pytest.fixture(scope="module")
def voice_track() -> speech.Speech:
    return speech.synthesize("This is a voice track for the loader. It lasts a few seconds.")


@pytest.mark.parametrize(
    "name,container,codec",
    [
        ("v.wav", "wav", "pcm_s16le"),
        ("v.mp3", "mp3", "libmp3lame"),
        ("v.m4a", "ipod", "aac"),
        ("v.aac", "adts", "aac"),
        ("v.ogg", "ogg", "libopus"),
        ("v.wma", "asf", "wmav2"),
    ],
)
def test_accepted_formats_load_mono_16k(tmp_path, voice_track, name, container, codec):
    path = _encode(tmp_path / name, voice_track.samples, voice_track.sample_rate, container, codec)
    duration = speech.check_audio_driver(path)
    assert duration == pytest.approx(voice_track.duration, abs=0.12)
    samples = speech.load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / 16000 == pytest.approx(voice_track.duration, abs=0.12)
    # the same speech, not noise: loudness envelopes agree
    reference = speech.frame_loudness(voice_track.samples, voice_track.sample_rate, 25)
    decoded = speech.frame_loudness(samples, 16000, 25)
    count = min(len(reference), len(decoded)) - 6

    def agreement(lag: int) -> float:  # codecs add or drop a little priming at the start
        return float(np.corrcoef(reference[3 : 3 + count], decoded[3 + lag : 3 + lag + count])[0, 1])

    assert max(agreement(lag) for lag in range(-3, 4)) > 0.9


def test_load_audio_resamples(tmp_path, voice_track):
    path = tmp_path / "v.wav"
    speech.write_wav(path, voice_track.samples, voice_track.sample_rate)
    at_8k = speech.load_audio(path, sample_rate=8000)
    assert len(at_8k) / 8000 == pytest.approx(voice_track.duration, abs=0.01)


def test_write_wav_is_16_bit_pcm(tmp_path):
    path = tmp_path / "tone.wav"
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    speech.write_wav(path, tone, 16000)
    with wave.open(str(path)) as wav:
        assert (wav.getsampwidth(), wav.getnchannels(), wav.getframerate()) == (2, 1, 16000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2") / 32767
    assert np.abs(data - tone).max() < 1e-4


def test_real_speech_recording_passes(tmp_path):
    jfk = REPO.parent / "shared" / "media" / "jfk_inaugural_11s.wav"
    if not jfk.exists():
        pytest.skip("shared media not present")
    assert speech.check_audio_driver(jfk) == pytest.approx(11.0, abs=0.05)


def test_not_audio_is_rejected(tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all\n" * 100)
    error = _rejected(speech.check_audio_driver, text, field="audio")
    assert str(error) == ("This file isn't audio we can read; upload a WAV, MP3, M4A, AAC, OGG or WMA file.")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _rejected(speech.check_audio_driver, empty, field="audio")
    _rejected(speech.load_audio, text, field="audio")


def test_other_formats_and_video_are_rejected(tmp_path, voice_track):
    flac = _encode(tmp_path / "v.flac", voice_track.samples, voice_track.sample_rate, "flac", "flac")
    assert "FLAC" in str(_rejected(speech.check_audio_driver, flac, field="audio"))
    video = tmp_path / "v.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 64
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 8, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    _rejected(speech.check_audio_driver, video, field="audio")


def test_short_long_silent_and_huge_audio_are_rejected(tmp_path):
    rng = np.random.default_rng(0)
    short = tmp_path / "short.wav"
    speech.write_wav(short, 0.2 * rng.standard_normal(8000).astype(np.float32), 16000)
    error = _rejected(speech.check_audio_driver, short, field="audio")
    assert str(error) == "The audio is 0.5 s long; a voice track needs 1 s to 10 min."

    silent = tmp_path / "silent.wav"
    speech.write_wav(silent, np.zeros(3 * 16000, np.float32), 16000)
    assert "silent" in str(_rejected(speech.check_audio_driver, silent, field="audio"))

    long = tmp_path / "long.wav"
    speech.write_wav(long, 0.1 * rng.standard_normal(8000 * 605).astype(np.float32), 8000)
    assert "10 min" in str(_rejected(speech.check_audio_driver, long, field="audio"))

    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as handle:
        handle.truncate(100 * 1024 * 1024 + 1)  # sparse: no disk or time spent
    assert "100 MB" in str(_rejected(speech.check_audio_driver, huge, field="audio"))


def test_frame_loudness_has_one_value_per_frame():
    samples = np.concatenate([np.zeros(8000), 0.5 * np.ones(8000)]).astype(np.float32)
    loudness = speech.frame_loudness(samples, 16000, 25)
    assert len(loudness) == 25
    assert loudness[2] == 0 and loudness[-2] == pytest.approx(0.5)


def test_frame_cepstrum_is_per_frame_and_independent_of_recording_gain(voice_track):
    samples, rate = voice_track.samples, voice_track.sample_rate
    cepstrum = speech.frame_cepstrum(samples, rate, 25)
    assert cepstrum.shape == (len(speech.frame_loudness(samples, rate, 25)), speech.CEPSTRUM_COEFFICIENTS)
    # a voice track recorded 20 dB quieter describes the same mouth
    quieter = speech.frame_cepstrum(samples * 0.1, rate, 25)
    speaking = cepstrum[:, 0] > -3.0
    assert speaking.mean() > 0.5
    assert np.abs(quieter - cepstrum)[speaking].max() < 0.1  # of values spanning ±10
    # and so does one at another sample rate
    at_16k = speech.frame_cepstrum(speech.resample(samples, rate, 16000), 16000, 25)
    assert np.corrcoef(at_16k[speaking, 1], cepstrum[speaking, 1])[0, 1] > 0.95


def test_frame_cepstrum_floors_silence_below_speech():
    rng = np.random.default_rng(0)
    samples = np.concatenate([np.zeros(16000), 0.3 * rng.standard_normal(16000)]).astype(np.float32)
    cepstrum = speech.frame_cepstrum(samples, 16000, 25)
    assert cepstrum[5, 0] == pytest.approx(-np.log(1e5), abs=1e-3)
    assert cepstrum[40, 0] > -1.0


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cli_speak_writes_wav(tmp_path):
    out = tmp_path / "out.wav"
    result = _cli("speak", "Hello from the command line.", "--voice", "en-us+f3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as wav:
        assert wav.getnframes() / wav.getframerate() > 1.0


def test_cli_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "out.wav"
    for args in (
        ["   "],
        ["Hello there", "--voice", "nope"],
        ["Hello there", "--speed", "2"],
        ["Hello there", "--volume", "11"],
    ):
        result = _cli("speak", *args, "-o", str(out))
        assert result.returncode == 2
        assert result.stderr.strip() and "Traceback" not in result.stderr
        assert not out.exists()
