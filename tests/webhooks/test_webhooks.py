"""Signed webhooks: every outcome of a delivery against a real HTTP server on 127.0.0.1."""

import base64
import hashlib
import hmac
import json
import re
from datetime import timedelta
from pathlib import Path

from django.template import Context, Template
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from engine.errors import InputRejected
from renders import rendering
from renders.models import Render
from studio.netguard import UrlRefused
from tests.base import BaseTestCase
from tests.factories import finished_render, ready_avatar
from tests.studio import local_http
from webhooks import delivery as delivery_module
from webhooks import services
from webhooks.models import RenderCallback, WebhookDelivery, WebhookSecret
from webhooks.tasks import webhook_send_due

Status = WebhookDelivery.Status


def verify(*, secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """The receiver's side, written from the spec alone: for each signature in the header,
    whether it is HMAC-SHA256 of "id.timestamp.body" under the secret's base64 key."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = headers["webhook-id"].encode() + b"." + headers["webhook-timestamp"].encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    results = []
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        results.append(version == "v1" and hmac.compare_digest(signature.encode(), expected))
    return results


class SignatureTestCase(BaseTestCase):
    def test_it_matches_the_published_example(self):
        # The Standard Webhooks reference libraries' signing example.
        signature = services.sign(
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            event_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=b'{"test": 2432232314}',
        )
        self.assertEqual(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

    def test_a_new_secret_has_the_spec_form(self):
        secret = services.webhook_secret(team=self.team).secret
        self.assertTrue(secret.startswith("whsec_"))
        self.assertEqual(len(base64.b64decode(secret.removeprefix("whsec_"))), 32)
        self.assertNotEqual(secret, services.webhook_secret(team=self.charlies_team).secret)


@override_settings(NETGUARD_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT_SECONDS=2)
class DeliveryTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.server = local_http.start()
        self.addCleanup(local_http.stop, self.server)
        self.avatar = ready_avatar(team=self.team, user=self.bob)
        self.render = finished_render(avatar=self.avatar, user=self.bob, captions=True)

    def hook(self, route, path="/hook") -> str:
        self.server.routes[path] = route
        services.webhook_callback_set(render=self.render, url=self.server.url(path))
        return self.server.url(path)

    def finish(self) -> WebhookDelivery:
        with self.captureOnCommitCallbacks(execute=True):
            services.webhook_render_finished(render_id=self.render.pk)
        delivery = WebhookDelivery.objects.get(render=self.render)
        delivery.sent_by = timezone.now()
        return delivery

    def send_again_now(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Let the clock jump to the next try, and let the beat's sweep send it."""
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhook_send_due()
        delivery.refresh_from_db()
        delivery.sent_by = timezone.now()
        return delivery

    @staticmethod
    def wait(delivery: WebhookDelivery) -> float:
        """Seconds from the attempt's end to the next try (the attempt's own time left out)."""
        return (delivery.next_attempt_at - delivery.sent_by).total_seconds()

    def test_a_2xx_delivers_a_signed_event(self):
        self.hook(local_http.status(204))
        delivery = self.finish()

        self.assertEqual((delivery.status, delivery.attempts, delivery.last_status_code), (Status.DELIVERED, 1, 204))
        self.assertIsNotNone(delivery.delivered_at)
        [request] = self.server.seen
        self.assertEqual((request.method, request.path), ("POST", "/hook"))
        self.assertEqual(request.headers["content-type"], "application/json")
        self.assertEqual(request.headers["webhook-id"], delivery.event_id)
        self.assertAlmostEqual(int(request.headers["webhook-timestamp"]), timezone.now().timestamp(), delta=5)
        secret = services.webhook_secret(team=self.team).secret
        self.assertEqual(verify(secret=secret, headers=request.headers, body=request.body), [True])
        self.assertEqual(verify(secret=secret, headers=request.headers, body=request.body + b" "), [False])

        event = json.loads(request.body)
        self.assertEqual(event["type"], "render.succeeded")
        self.assertEqual(event["data"]["id"], str(self.render.pk))
        self.assertEqual(event["data"]["status"], "succeeded")
        self.assertIsNone(event["data"]["error"])
        self.assertEqual(event["data"]["duration"], 1.0)
        self.assertTrue(event["data"]["video_url"].startswith("http://localhost:8000/media/teams/"))
        self.assertTrue(event["data"]["captions_vtt_url"].startswith("http://"))

    def test_the_documented_receiver_accepts_a_delivery_and_nothing_else(self):
        docs = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
        snippet = re.search(r"```python\n(.*?)```", docs, re.S).group(1)
        namespace = {}
        exec(snippet, namespace)
        verify_webhook = namespace["verify_webhook"]
        self.hook(local_http.status(200))
        services.webhook_secret(team=self.team)
        services.webhook_secret_rotate(team=self.team)
        self.finish()
        [request] = self.server.seen
        secret = services.webhook_secret(team=self.team)

        for key in (secret.secret, secret.previous_secret):
            self.assertEqual(verify_webhook(key, request.headers, request.body)["data"]["id"], str(self.render.pk))
        with self.assertRaises(ValueError):
            verify_webhook(secret.secret, request.headers, request.body.replace(b"succeeded", b"failed"))
        with self.assertRaises(ValueError):
            verify_webhook(services.webhook_secret(team=self.charlies_team).secret, request.headers, request.body)
        stale = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 600)}
        with self.assertRaises(ValueError):
            verify_webhook(secret.secret, stale, request.body)

    def test_after_a_rotation_it_signs_with_both_secrets_for_a_day(self):
        self.hook(local_http.status(200))
        old = services.webhook_secret(team=self.team).secret
        new = services.webhook_secret_rotate(team=self.team).secret
        self.assertNotEqual(old, new)

        self.finish()
        request = self.server.seen[-1]
        self.assertEqual(verify(secret=new, headers=request.headers, body=request.body), [True, False])
        self.assertEqual(verify(secret=old, headers=request.headers, body=request.body), [False, True])

        WebhookSecret.objects.filter(team=self.team).update(previous_valid_until=timezone.now() - timedelta(seconds=1))
        self.render.finished_at = timezone.now()  # a second outcome (say, after a retry)
        self.render.save()
        self.finish_second()
        request = self.server.seen[-1]
        self.assertEqual(verify(secret=new, headers=request.headers, body=request.body), [True])

    def finish_second(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            services.webhook_render_finished(render_id=self.render.pk)

    def test_a_redirect_counts_as_a_failure_and_is_not_followed(self):
        self.server.routes["/moved"] = local_http.status(200)
        self.hook(local_http.redirect(self.server.url("/moved"), 301))
        delivery = self.finish()

        self.assertEqual((delivery.status, delivery.last_status_code, delivery.attempts), (Status.PENDING, 301, 1))
        self.assertIn("do not follow redirects", delivery.last_error)
        self.assertEqual([seen.path for seen in self.server.seen], ["/hook"])
        self.assertTrue(4 <= self.wait(delivery) <= 6, self.wait(delivery))

    def test_410_disables_the_callback(self):
        self.hook(local_http.status(410))
        delivery = self.finish()

        self.assertEqual((delivery.status, delivery.last_status_code), (Status.DISABLED, 410))
        self.assertIsNone(delivery.next_attempt_at)
        self.assertIsNotNone(RenderCallback.objects.get(render=self.render).disabled_at)
        # The receiver is not bothered again, neither by a retry nor by the render's next outcome.
        self.assertEqual(self.send_again_now(delivery).attempts, 1)
        self.render.finished_at = timezone.now()
        self.render.save()
        self.finish_second()
        self.assertEqual(WebhookDelivery.objects.filter(render=self.render).count(), 1)
        self.assertEqual(len(self.server.seen), 1)

    def test_429_and_503_honour_retry_after(self):
        self.hook(local_http.status(429, {"Retry-After": "120"}))
        delivery = self.finish()
        self.assertEqual((delivery.status, delivery.last_status_code), (Status.PENDING, 429))
        self.assertTrue(118 <= self.wait(delivery) <= 120, self.wait(delivery))

        in_ten_minutes = timezone.now() + timedelta(minutes=10)
        self.server.routes["/hook"] = local_http.status(
            503, {"Retry-After": in_ten_minutes.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        )
        delivery = self.send_again_now(delivery)
        self.assertEqual((delivery.last_status_code, delivery.attempts), (503, 2))
        self.assertTrue(590 <= self.wait(delivery) <= 600, self.wait(delivery))

    def test_500_is_retried_with_growing_delays_then_failed(self):
        self.hook(local_http.status(500))
        delivery = self.finish()
        waits = []
        while delivery.status == Status.PENDING:
            waits.append(self.wait(delivery))
            delivery = self.send_again_now(delivery)

        self.assertEqual(delivery.status, Status.FAILED)
        self.assertEqual(delivery.attempts, len(delivery_module.RETRY_DELAYS) + 1)
        self.assertEqual(len(self.server.seen), delivery.attempts)
        self.assertEqual(delivery.last_error, "The receiver answered 500.")
        self.assertEqual(waits, sorted(waits))
        self.assertLess(waits[0], 10)
        self.assertGreater(waits[-1], 3600)
        hours = sum(delivery_module.RETRY_DELAYS) / 3600
        self.assertTrue(20 <= hours <= 28, hours)
        for wait, nominal in zip(waits, delivery_module.RETRY_DELAYS):
            self.assertTrue(0.85 * nominal - 2 <= wait <= 1.15 * nominal, (wait, nominal))

    @override_settings(WEBHOOK_TIMEOUT_SECONDS=1)
    def test_a_timeout_is_retried_with_a_growing_delay(self):
        self.hook(local_http.slow_headers(seconds=3))
        delivery = self.finish()
        self.assertEqual((delivery.status, delivery.last_status_code), (Status.PENDING, None))
        self.assertIn("did not answer within 1 seconds", delivery.last_error)
        first_wait = self.wait(delivery)

        delivery = self.send_again_now(delivery)
        self.assertEqual((delivery.status, delivery.attempts), (Status.PENDING, 2))
        self.assertIn("did not answer within 1 seconds", delivery.last_error)
        self.assertGreater(self.wait(delivery), first_wait)

    def test_a_callback_to_loopback_is_refused_at_save(self):
        with override_settings(NETGUARD_ALLOW_PRIVATE=False):
            with self.assertRaises(UrlRefused) as refused:
                services.webhook_callback_set(render=self.render, url=self.server.url("/hook"))
            with self.assertRaises(UrlRefused):
                services.webhook_callback_check(url="http://169.254.169.254/latest/meta-data/")
        self.assertEqual(refused.exception.field, "callback_url")
        self.assertIn("private or local network address", str(refused.exception))
        self.assertFalse(RenderCallback.objects.exists())

    def test_a_callback_to_loopback_is_refused_at_send(self):
        self.hook(local_http.status(200))  # saved while loopback was allowed
        with override_settings(NETGUARD_ALLOW_PRIVATE=False):
            delivery = self.finish()
        self.assertEqual(delivery.status, Status.FAILED)
        self.assertIn("private or local network address", delivery.last_error)
        self.assertEqual(self.server.seen, [])

    def test_an_unreachable_receiver_is_retried(self):
        self.hook(local_http.status(200))
        local_http.stop(self.server)
        delivery = self.finish()
        self.assertEqual((delivery.status, delivery.attempts), (Status.PENDING, 1))
        self.assertIn("Could not connect", delivery.last_error)

    def test_the_render_page_list_shows_each_delivery(self):
        self.hook(local_http.status(503))
        self.finish()
        html = Template("{% load webhooks %}{% render_webhook_deliveries render %}").render(Context({"render": self.render}))
        self.assertIn("render.succeeded", html)
        self.assertIn("HTTP 503", html)
        self.assertIn("The receiver answered 503.", html)
        self.assertIn(self.server.url("/hook"), html)
        other = finished_render(avatar=self.avatar, user=self.bob)
        self.assertNotIn("Webhook deliveries", Template("{% load webhooks %}{% render_webhook_deliveries render %}").render(
            Context({"render": other})))

    def test_a_duplicate_message_sends_once(self):
        self.hook(local_http.status(200))
        delivery = self.finish()
        delivery_module.deliver(delivery.pk)  # a redelivered task message
        self.assertEqual(len(self.server.seen), 1)

    def test_a_render_that_is_not_finished_or_has_no_callback_sends_nothing(self):
        self.assertIsNone(services.webhook_render_finished(render_id=self.render.pk))  # no callback
        self.hook(local_http.status(200))
        Render.objects.filter(pk=self.render.pk).update(status=Render.Status.RUNNING)
        self.assertIsNone(services.webhook_render_finished(render_id=self.render.pk))
        self.assertFalse(WebhookDelivery.objects.exists())


@override_settings(NETGUARD_ALLOW_PRIVATE=True)
class TerminalStateHookTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.server = local_http.start()
        self.addCleanup(local_http.stop, self.server)
        self.server.routes["/hook"] = local_http.status(200)
        self.avatar = ready_avatar(team=self.team, user=self.bob)

    def queued_render(self) -> Render:
        render = Render.objects.create(team=self.team, avatar=self.avatar, created_by=self.bob, title="Launch",
                                       script="Hello there.", voice="en-us")
        services.webhook_callback_set(render=render, url=self.server.url("/hook"))
        return render

    def test_a_failing_render_posts_exactly_one_failed_event(self):
        render = self.queued_render()

        def refuse(request, **kwargs):
            raise InputRejected("The avatar's face could not be found in the first seconds.", field="avatar")

        original, rendering.pipeline.render = rendering.pipeline.render, refuse
        self.addCleanup(setattr, rendering.pipeline, "render", original)
        with self.captureOnCommitCallbacks(execute=True):
            rendering.render_run(str(render.pk))
        with self.captureOnCommitCallbacks(execute=True):
            webhook_send_due()  # the safety sweep finds nothing missing

        render.refresh_from_db()
        self.assertEqual(render.status, Render.Status.FAILED)
        delivery = WebhookDelivery.objects.get(render=render)
        self.assertEqual((delivery.event_type, delivery.status), ("render.failed", Status.DELIVERED))
        [request] = self.server.seen
        event = json.loads(request.body)
        self.assertEqual(event["data"]["error"], "The avatar's face could not be found in the first seconds.")
        self.assertIsNone(event["data"]["video_url"])

    def test_the_sweep_posts_an_outcome_whose_hook_was_missed(self):
        render = self.queued_render()
        Render.objects.filter(pk=render.pk).update(status=Render.Status.CANCELLED, finished_at=timezone.now())
        with self.captureOnCommitCallbacks(execute=True):
            webhook_send_due()
        with self.captureOnCommitCallbacks(execute=True):
            webhook_send_due()
            services.webhook_render_finished(render_id=render.pk)

        delivery = WebhookDelivery.objects.get(render=render)
        self.assertEqual((delivery.event_type, delivery.status), ("render.cancelled", Status.DELIVERED))
        self.assertEqual(len(self.server.seen), 1)


class TeamPageTestCase(BaseTestCase):
    def test_owners_see_the_signing_secret_and_rotate_it(self):
        self.login(self.alice, self.team)
        secret = services.webhook_secret(team=self.team).secret
        page = self.client.get(reverse("team_settings"))
        self.assertContains(page, secret)

        answer = self.client.post(reverse("webhook_secret_rotate"), follow=True)
        self.assertContains(answer, "signed with both secrets for the next 24 hours")
        rotated = WebhookSecret.objects.get(team=self.team)
        self.assertEqual(rotated.previous_secret, secret)
        self.assertContains(answer, rotated.secret)
        self.assertContains(answer, "The previous secret still signs too")

    def test_editors_neither_see_nor_rotate_it(self):
        secret = services.webhook_secret(team=self.team).secret
        self.login(self.bob, self.team)
        self.assertNotContains(self.client.get(reverse("team_settings")), secret)
        self.assertEqual(self.client.post(reverse("webhook_secret_rotate")).status_code, 403)
        self.assertEqual(WebhookSecret.objects.get(team=self.team).secret, secret)
