"""The shared HTTP layer: what is transient, what is the account's fault, and no secrets out."""

import email.utils
import logging
import time

import httpx
import pytest
import respx

from engine.remote import (
    A2EEngine,
    Media,
    NewportAIEngine,
    ProviderAuthError,
    ProviderQuotaError,
    ProviderTask,
    RenderRequest,
    TencentEngine,
    TopViewEngine,
    TransientProviderError,
)
from engine.remote.http import parse_retry_after

POLL = "https://api.newportai.com/api/getAsyncResult"
KEY = "sk-live-VERYSECRET-4242"
TASK = ProviderTask("newportai", "render", "t1")


@pytest.fixture
def newport():
    with NewportAIEngine({"api_key": KEY}) as engine:
        yield engine


@respx.mock
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(newport, status):
    respx.post(POLL).mock(return_value=httpx.Response(status, text="upstream down"))
    with pytest.raises(TransientProviderError) as caught:
        newport.render_status(TASK)
    assert caught.value.code == status
    assert f"HTTP {status}" in str(caught.value)


@respx.mock
def test_429_carries_retry_after_in_seconds(newport):
    respx.post(POLL).mock(return_value=httpx.Response(429, headers={"Retry-After": "17"}, json={}))
    with pytest.raises(TransientProviderError) as caught:
        newport.render_status(TASK)
    assert caught.value.retry_after == 17.0
    assert "rate-limiting" in str(caught.value)


def test_retry_after_as_an_http_date():
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 <= parse_retry_after(later) <= 121
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@respx.mock
def test_connection_failure_is_transient(newport):
    respx.post(POLL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransientProviderError, match="Could not reach NewportAI"):
        newport.render_status(TASK)


@respx.mock
@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_says_so(newport, status):
    respx.post(POLL).mock(return_value=httpx.Response(status, json={"message": "bad token"}))
    with pytest.raises(ProviderAuthError) as caught:
        newport.render_status(TASK)
    assert str(caught.value).startswith("The NewportAI key was refused")
    assert not isinstance(caught.value, TransientProviderError)


@respx.mock
def test_payment_required_is_out_of_credits(newport):
    respx.post(POLL).mock(return_value=httpx.Response(402, json={"message": "no credits"}))
    with pytest.raises(ProviderQuotaError, match="out of credits"):
        newport.render_status(TASK)


@respx.mock
def test_a_non_json_answer_is_transient(newport):
    respx.post(POLL).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(TransientProviderError, match="not JSON"):
        newport.render_status(TASK)


@respx.mock
def test_a_credential_echoed_by_the_provider_never_reaches_the_exception(newport, caplog):
    caplog.set_level(logging.DEBUG, logger="engine.remote")
    respx.post(POLL).mock(return_value=httpx.Response(
        401, json={"message": f"key {KEY} is not valid"}))
    with pytest.raises(ProviderAuthError) as caught:
        newport.render_status(TASK)
    error = caught.value
    for text in (str(error), repr(error), error.reason, str(error.__cause__), str(error.__context__)):
        assert KEY not in text
    assert "[redacted]" in str(error)
    assert error.__cause__ is None
    assert KEY not in caplog.text
    assert "POST api.newportai.com/api/getAsyncResult" in caplog.text


@respx.mock
def test_a_timeout_does_not_chain_httpx_errors_that_carry_urls():
    engine = TencentEngine({"appkey": "app-1234", "access_token": "tok-SECRET-9876"})
    respx.post(url__startswith="https://gw-sg.tvs.qq.com/").mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(TransientProviderError) as caught:
        engine.render_status(ProviderTask("tencent", "render", "t"))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "signature" not in str(caught.value)


@pytest.mark.parametrize("engine, credentials", [
    (A2EEngine, {"api_key": "a2e-SECRET-1111"}),
    (TencentEngine, {"appkey": "app-2222", "access_token": "tok-SECRET-3333"}),
    (TopViewEngine, {"api_key": "tv-SECRET-4444", "uid": "uid-5555"}),
    (NewportAIEngine, {"api_key": "np-SECRET-6666"}),
])
def test_credentials_stay_out_of_reprs(engine, credentials):
    instance = engine(credentials)
    shown = repr(instance) + repr(instance._credentials) + str(instance._credentials) + repr(vars(instance))
    for secret in credentials.values():
        assert secret not in shown


def test_missing_credentials_are_named():
    with pytest.raises(Exception) as caught:
        TopViewEngine({"api_key": "x-1234"})
    assert "uid" in str(caught.value)


def test_every_request_has_a_timeout():
    engine = NewportAIEngine({"api_key": KEY})
    timeout = engine._http.client.timeout
    assert None not in (timeout.connect, timeout.read, timeout.write, timeout.pool)
    assert engine._http.client.follow_redirects is False


@respx.mock
def test_a_short_timeout_is_honoured_against_a_slow_server():
    """A real socket that accepts and never answers: the read timeout fires."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    respx.route(host="127.0.0.1").pass_through()
    engine = NewportAIEngine({"api_key": KEY}, base_url=f"http://127.0.0.1:{port}", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransientProviderError):
        engine.render_status(TASK)
    assert time.monotonic() - started < 3
    listener.close()


def test_a_request_with_no_driver_is_refused_for_every_provider():
    for engine in (NewportAIEngine({"api_key": KEY}),):
        with pytest.raises(Exception, match="either a script or an audio file"):
            engine.check_render(RenderRequest(avatar_source=Media(url="https://m.example.com/a.mp4", format="mp4")))


ECHOES = [
    (A2EEngine({"api_key": "a2e-SECRET-1111"}, probe_urls=False), "a2e-SECRET-1111",
     RenderRequest(avatar_id="anchor", audio=Media(url="https://m.example.com/a.wav", format="wav")),
     lambda message: httpx.Response(200, json={"code": 7, "msg": message})),
    (TencentEngine({"appkey": "app-2222", "access_token": "tok-SECRET-3333"}), "tok-SECRET-3333",
     RenderRequest(avatar_source=Media(url="https://m.example.com/a.mp4", format="mp4"),
                   audio=Media(url="https://m.example.com/a.wav", format="wav")),
     lambda message: httpx.Response(200, json={"Header": {"Code": 9, "Message": message}, "Payload": {}})),
    (TopViewEngine({"api_key": "tv-SECRET-4444", "uid": "uid-5555"}), "tv-SECRET-4444",
     RenderRequest(avatar_id="avatar", text="Hello", voice="v"),
     lambda message: httpx.Response(200, json={"code": "500", "message": message})),
]


@respx.mock
@pytest.mark.parametrize("engine, secret, request_, answer", ECHOES, ids=["a2e", "tencent", "topview"])
def test_no_engine_repeats_a_secret_the_provider_echoed(engine, secret, request_, answer):
    respx.route().mock(return_value=answer(f"bad credentials {secret} for this account"))
    with pytest.raises(Exception) as caught:
        engine.start_render(request_)
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert "[redacted]" in str(caught.value)


@respx.mock
@pytest.mark.parametrize("engine, task", [
    (A2EEngine({"api_key": "k-1234"}), ProviderTask("a2e", "render", "v")),
    (TencentEngine({"appkey": "a-1234", "access_token": "t-1234"}), ProviderTask("tencent", "render", "v")),
    (TopViewEngine({"api_key": "k-1234", "uid": "u-1234"}), ProviderTask("topview", "render", "v")),
    (NewportAIEngine({"api_key": "k-1234"}), ProviderTask("newportai", "render", "v")),
], ids=["a2e", "tencent", "topview", "newportai"])
def test_a_status_poll_that_times_out_is_transient_for_every_provider(engine, task):
    respx.route().mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientProviderError) as caught:
        engine.render_status(task)
    assert caught.value.code == "timeout" and engine.label in str(caught.value)
