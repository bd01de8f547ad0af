"""The voices: every espeak-ng language as a male and a female voice.

- ``list_voices() -> list[Voice]``: sorted by language, then name.
- ``sample_sentence(voice) -> str``: a short "listen" sentence in the voice's language.
- ``resolve_voice(voice) -> str``: the espeak name for a listed voice id (or any base voice
  plus any espeak variant); anything else is rejected.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputRejected
from . import espeak
from .espeak import VoiceStruct

DEFAULT_VOICE = "en-us"
FEMALE_VARIANT = "f3"
MALE_VARIANT = "m3"


@dataclass(frozen=True)
class Voice:
    id: str  # espeak voice name usable in synthesize(), e.g. "en-us" or "en-us+f3"
    name: str  # human label, e.g. "English (America) — female 3"
    language: str  # BCP-47-ish, e.g. "en-US", "fr-FR", "de"
    gender: str  # "female" | "male"


def _bcp47(code: str) -> str:
    """espeak's lower-case language codes in BCP-47 case: en-us → en-US, cmn-latn → cmn-Latn."""
    parts = code.split("-")
    out = [parts[0].lower()]
    private = False
    for part in parts[1:]:
        if private or part.lower() == "x":
            private = True
            out.append(part.lower())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part)
    return "-".join(out)


def _voice_languages(struct: VoiceStruct) -> list[str]:
    """Decode espeak_VOICE.languages: (priority byte, zero-terminated name)*, then a zero."""
    languages = []
    address = struct.languages
    while address and ctypes.c_ubyte.from_address(address).value != 0:
        name = ctypes.string_at(address + 1)
        languages.append(name.decode("utf-8", "replace"))
        address += len(name) + 2
    return languages


def _has_dictionary(data_path: Path, identifier: str, language: str) -> bool:
    """Whether the wheel ships the voice's pronunciation dictionary (a few are left out).

    A voice file names its dictionary with a "dictionary" line; otherwise espeak uses the
    language's primary subtag (en-us → en_dict).
    """
    dictionary = language.split("-")[0].lower()
    try:
        for line in (data_path / "lang" / identifier).read_text("utf-8", "replace").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "dictionary":
                dictionary = words[1]
                break
    except OSError:
        pass
    return (data_path / f"{dictionary}_dict").is_file()


@functools.lru_cache(maxsize=1)
def _voice_table() -> tuple[Voice, ...]:
    engine = espeak.instance()
    voices: dict[str, Voice] = {}
    with espeak.LOCK:
        table = engine.lib.espeak_ListVoices(None)
        index = 0
        while table[index]:
            struct = table[index].contents
            index += 1
            identifier = struct.identifier.decode()
            if identifier.startswith("mb/"):  # MBROLA voices need databases we don't ship
                continue
            base_id = identifier.rsplit("/", 1)[-1].lower()
            languages = _voice_languages(struct) or [base_id]
            if not _has_dictionary(engine.data_path, identifier, languages[0]):
                continue
            language = _bcp47(languages[0])
            label = struct.name.decode("utf-8", "replace")
            base_is_female = struct.gender == espeak.GENDER_FEMALE
            base_gender = "female" if base_is_female else "male"
            other_variant = MALE_VARIANT if base_is_female else FEMALE_VARIANT
            other_gender = "male" if base_is_female else "female"
            voices[base_id] = Voice(base_id, f"{label} — {base_gender}", language, base_gender)
            variant_id = f"{base_id}+{other_variant}"
            voices[variant_id] = Voice(
                variant_id,
                f"{label} — {other_gender} {other_variant[1:]}",
                language,
                other_gender,
            )
    return tuple(sorted(voices.values(), key=lambda v: (v.language.lower(), v.name)))


def is_english(voice_id: str) -> bool:
    """Whether a voice (any variant, e.g. "en-gb-scotland+f3") speaks English: the language
    PocketSphinx's bundled model recognises words in."""
    return voice_id.split("+")[0].split("-")[0].lower() == "en"


def list_voices() -> list[Voice]:
    """Every espeak-ng language as a male and a female voice, sorted by language then name."""
    return list(_voice_table())


@functools.lru_cache(maxsize=1)
def _base_voice_ids() -> frozenset[str]:
    return frozenset(v.id for v in _voice_table() if "+" not in v.id)


def resolve_voice(voice: str) -> str:
    """The espeak name for ``voice``: a listed id, or any base voice + any espeak variant."""
    requested = (voice or "").strip().lower()
    base, _, variant = requested.partition("+")
    if base in _base_voice_ids() and (not variant or variant in espeak.instance().variants):
        return requested
    raise InputRejected(
        f"The voice “{voice}” isn't available; pick one from the voice list.",
        field="voice",
        code="voice_unknown",
    )


_SAMPLE_SENTENCES = {
    "af": "Hallo, ek is jou nuwe avatar. Lekker om jou te ontmoet.",
    "ca": "Hola, sóc el teu nou avatar. Encantat de conèixer-te.",
    "cs": "Dobrý den, jsem váš nový avatar. Rád vás poznávám.",
    "cy": "Helo, fi yw eich afatar newydd. Braf cwrdd â chi.",
    "da": "Hej, jeg er din nye avatar. Rart at møde dig.",
    "de": "Hallo, ich bin dein neuer Avatar. Schön, dich kennenzulernen.",
    "el": "Γεια σας, είμαι το νέο σας άβαταρ. Χάρηκα για τη γνωριμία.",
    "en": "Hello, I'm your new avatar. It's good to meet you.",
    "eo": "Saluton, mi estas via nova avataro. Estas plezuro koni vin.",
    "es": "Hola, soy tu nuevo avatar. Encantado de conocerte.",
    "et": "Tere, ma olen sinu uus avatar. Meeldiv tutvuda.",
    "fi": "Hei, olen uusi avatarisi. Hauska tavata.",
    "fr": "Bonjour, je suis votre nouvel avatar. Ravi de vous rencontrer.",
    "hi": "नमस्ते, मैं आपका नया अवतार हूँ। आपसे मिलकर खुशी हुई।",
    "hu": "Szia, én vagyok az új avatárod. Örülök, hogy megismerhetlek.",
    "id": "Halo, saya avatar baru Anda. Senang bertemu dengan Anda.",
    "is": "Halló, ég er nýi avatarinn þinn. Gaman að kynnast þér.",
    "it": "Ciao, sono il tuo nuovo avatar. Piacere di conoscerti.",
    "ja": "こんにちは、私はあなたの新しいアバターです。",
    "ko": "안녕하세요, 저는 당신의 새로운 아바타입니다.",
    "la": "Salve, ego sum novum simulacrum tuum.",
    "lt": "Sveiki, aš esu jūsų naujas avataras. Malonu susipažinti.",
    "lv": "Sveiki, es esmu jūsu jaunais avatārs. Prieks iepazīties.",
    "nb": "Hei, jeg er din nye avatar. Hyggelig å treffe deg.",
    "nl": "Hallo, ik ben je nieuwe avatar. Leuk je te ontmoeten.",
    "pl": "Cześć, jestem twoim nowym awatarem. Miło cię poznać.",
    "pt": "Olá, eu sou o seu novo avatar. Prazer em conhecê-lo.",
    "ro": "Bună, sunt noul tău avatar. Îmi pare bine să te cunosc.",
    "ru": "Здравствуйте, я ваш новый аватар. Рад знакомству.",
    "sk": "Dobrý deň, som váš nový avatar. Teší ma.",
    "sv": "Hej, jag är din nya avatar. Trevligt att träffas.",
    "sw": "Habari, mimi ni avatar yako mpya. Nafurahi kukutana nawe.",
    "tr": "Merhaba, ben yeni avatarınım. Tanıştığıma memnun oldum.",
    "uk": "Вітаю, я ваш новий аватар. Радий знайомству.",
    "vi": "Xin chào, tôi là hình đại diện mới của bạn.",
    "cmn": "你好，我是你的新虚拟形象。很高兴认识你。",
    "zh": "你好，我是你的新虚拟形象。很高兴认识你。",
    "yue": "你好，我係你嘅新虛擬形象。好高興認識你。",
}


def sample_sentence(voice: Voice) -> str:
    """A short "listen" sentence in the voice's language (English when we have none)."""
    primary = voice.language.split("-")[0].lower()
    if primary == "cmn" and "latn" in voice.language.lower():
        return _SAMPLE_SENTENCES["en"]  # the Pinyin voice reads romanised text, not Hanzi
    return _SAMPLE_SENTENCES.get(primary, _SAMPLE_SENTENCES["en"])
