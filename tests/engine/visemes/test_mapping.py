"""engine.visemes.mapping: the viseme set, its shapes and the phoneme tables."""

from __future__ import annotations

import pytest

from engine import speech, visemes


def test_tables_cover_the_viseme_set_and_arpabet():
    assert len(visemes.VISEMES) == 15
    assert set(visemes.TARGETS) == set(visemes.VISEMES) == set(visemes.DOMINANCE)
    for table in (visemes.ESPEAK_TO_VISEME, visemes.ARPABET_TO_VISEME):
        for phoneme, targets in table.items():
            assert targets and set(targets) <= set(visemes.VISEMES), phoneme
    arpabet = (
        "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
    )
    for phone in arpabet.split():
        shapes, _ = visemes.phoneme_to_visemes(phone, "arpabet")
        assert shapes == (None,) if phone == "HH" else set(shapes) <= set(visemes.VISEMES)
    for shape in visemes.TARGETS.values():
        assert len(shape) == len(visemes.PARAMETERS) and all(0 <= v <= 1 for v in shape)
    # strong and narrow vs weak, as the issue asks
    strong, weak = visemes.DOMINANCE["PP"], visemes.DOMINANCE["DD"]
    assert strong.strength > 3 * weak.strength
    assert visemes.DOMINANCE["ou"].anticipation < visemes.DOMINANCE["aa"].anticipation


@pytest.mark.parametrize(
    "voice", ["en-us", "en", "fr", "de", "es", "it", "pt", "ru", "nl", "pl", "cmn", "hi", "ja"]
)
def test_espeak_phonemes_of_many_languages_map_to_visemes(voice):
    by_id = {v.id: v for v in speech.list_voices()}
    result = speech.synthesize(speech.sample_sentence(by_id[voice]), voice=voice)
    spoken = [p.phoneme for p in result.phonemes if p.phoneme != speech.PAUSE]
    unknown = [
        p for p in spoken if visemes.phoneme_to_visemes(p)[0] == (None,) and p not in ("h", "H", "?", "h#")
    ]
    assert len(unknown) <= 0.05 * len(spoken), unknown
