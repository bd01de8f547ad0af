"""Provider engines: render the studio's avatars on A2E, Tencent, TopView or NewportAI.

``engine_for("a2e", {"api_key": …})`` gives the engine; ``PROVIDERS`` lists them with their
``capabilities`` so forms can show only what a provider offers. See docs/providers.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InputRejected
from .a2e import A2EEngine
from .base import (
    STATES,
    AvatarRequest,
    CallbackEvent,
    Capabilities,
    Media,
    MediaRule,
    OptionSpec,
    ProviderEngine,
    ProviderTask,
    RenderRequest,
    Status,
    signed_callback_url,
)
from .errors import (
    CallbackRejected,
    ProviderAuthError,
    ProviderError,
    ProviderInputRejected,
    ProviderQuotaError,
    TransientProviderError,
)
from .newport import NewportAIEngine
from .tencent import TencentEngine
from .topview import TopViewEngine

PROVIDERS: dict[str, type[ProviderEngine]] = {
    engine.name: engine for engine in (A2EEngine, TencentEngine, TopViewEngine, NewportAIEngine)
}


def engine_for(provider: str, credentials: Mapping[str, str], **options) -> ProviderEngine:
    try:
        engine = PROVIDERS[provider]
    except KeyError:
        raise InputRejected(f"Unknown engine {provider!r}; choose {', '.join(PROVIDERS)}.", field="engine",
                            code="engine") from None
    return engine(credentials, **options)


__all__ = [
    "PROVIDERS", "STATES", "A2EEngine", "AvatarRequest", "CallbackEvent", "CallbackRejected", "Capabilities",
    "Media", "MediaRule", "NewportAIEngine", "OptionSpec", "ProviderAuthError", "ProviderEngine", "ProviderError",
    "ProviderInputRejected", "ProviderQuotaError", "ProviderTask", "RenderRequest", "Status", "TencentEngine",
    "TopViewEngine", "TransientProviderError", "engine_for", "signed_callback_url",
]
