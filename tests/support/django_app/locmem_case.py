"""A Django test case run by Django's own test runner inside the scenario: while Django's tests
run, mail goes to ``mail.outbox`` (the locmem backend), not to mailwire or any server."""

from __future__ import annotations

from django.core import mail
from django.core.mail import send_mail
from django.test import SimpleTestCase


class LocmemStillWorks(SimpleTestCase):
    def test_mail_goes_to_the_outbox(self) -> None:
        sent = send_mail("Under test", "kept in memory", "app@example.com",
                         ["tester@example.org"])
        self.assertEqual(sent, 1)
        self.assertEqual(len(mail.outbox), 1)
        self.assertEqual(mail.outbox[0].subject, "Under test")
