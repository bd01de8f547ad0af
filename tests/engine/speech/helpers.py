"""What the speech tests share: a sentence full of bilabials, the rejection check, real speech."""

from __future__ import annotations

import pytest

from engine.devmedia import shared_media
from engine.errors import InputRejected

SENTENCE = "Bob met Pam by the maple bench, and they talked about the weather."
JFK = shared_media("jfk_inaugural_11s.wav")


def rejected(call, *args, field: str, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field
    message = str(caught.value)
    assert message.endswith(".") and message[0].isupper() and "\n" not in message
    return caught.value
