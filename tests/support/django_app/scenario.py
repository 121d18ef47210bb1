"""Configure Django from the JSON in ``$TEST_DJANGO_SCENARIO``, send mail every way Django
offers through mailwire's backend, and print what each call returned as JSON on stdout.

``mode`` "mailers" uses Django 6.1's ``MAILERS`` (with a second mailer from a mailwire
configuration profile); "classic" the ``EMAIL_*`` settings with a ``MAILWIRE`` dict.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import django
from django.conf import settings

BACKEND = "mailwire.integrations.django.EmailBackend"


def configure(spec: dict[str, Any]) -> None:
    modern = django.VERSION >= (6, 0)
    admins: list[Any] = ["admin1@example.org", "admin2@example.org"]
    values: dict[str, Any] = {
        "SECRET_KEY": "not-secret", "INSTALLED_APPS": [], "DATABASES": {},
        "ADMINS": admins if modern else [(address, address) for address in admins],
        "SERVER_EMAIL": "server@example.com",
        "DEFAULT_FROM_EMAIL": "Web App <webapp@example.com>",
        "EMAIL_SUBJECT_PREFIX": "[Django] ",
    }
    options = {"host": "127.0.0.1", "port": spec["port"], "username": spec["user"],
               "password": spec["password"], "use_tls": True, "timeout": 10,
               "ca_file": spec["ca_file"]}
    if spec["mode"] == "mailers":
        values["MAILERS"] = {
            "default": {"BACKEND": BACKEND, "OPTIONS": options},
            "relay": {"BACKEND": BACKEND,
                      "OPTIONS": {"config": spec["config"], "profile": "django"}},
        }
    else:
        values |= {"EMAIL_BACKEND": BACKEND, "EMAIL_HOST": "127.0.0.1",
                   "EMAIL_PORT": spec["port"], "EMAIL_HOST_USER": spec["user"],
                   "EMAIL_HOST_PASSWORD": spec["password"], "EMAIL_USE_TLS": True,
                   "EMAIL_TIMEOUT": 10, "MAILWIRE": {"ca_file": spec["ca_file"]}}
    settings.configure(**values)
    django.setup()


def connection() -> Any:
    from django.core import mail

    if hasattr(mail, "mailers") and hasattr(settings, "MAILERS"):
        return mail.mailers.default
    return mail.get_connection()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from django.core.mail import (
        EmailMessage,
        EmailMultiAlternatives,
        mail_admins,
        send_mail,
        send_mass_mail,
    )
    from django.test.runner import DiscoverRunner

    out: dict[str, Any] = {"django": django.get_version()}
    out["send_mail"] = send_mail("Plain", "Plain body.", None, ["alice@example.org"])
    out["send_mass_mail"] = send_mass_mail(tuple(
        (f"Mass {n}", f"Mass body {n}.", None, [f"mass{n}@example.org"]) for n in range(3)))
    rich = EmailMultiAlternatives("Rich", "The text version.", "Sender Name <sender@example.com>",
                                  ["Bob <bob@example.org>"], bcc=["hidden@example.org"])
    rich.attach_alternative("<p>The <b>HTML</b> version.</p>", "text/html")
    rich.attach("report.csv", "a,b\n1,2\n", "text/csv")
    rich.attach("blob.bin", bytes(range(256)), "application/octet-stream")
    out["multi"] = rich.send()
    mail_admins("Admin alert", "Something broke.", html_message="<p>Something broke.</p>")
    out["mail_admins"] = True
    backend = connection()
    out["open"] = [backend.open(), backend.open()]
    out["held"] = backend.send_messages([
        EmailMessage(f"Held {n}", "On the held connection.", None, [f"held{n}@example.org"])
        for n in range(2)])
    backend.close()
    with connection() as managed:
        out["context"] = managed.send_messages([
            EmailMessage("Managed", "In a with block.", None, ["managed@example.org"])])
    out["empty"] = connection().send_messages([])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["fail_silently"] = send_mail("Refused", "x", None, [spec["refused"]],
                                         fail_silently=True)
    try:
        send_mail("Refused", "x", None, [spec["refused"]])
    except Exception as error:
        out["refused_error"] = f"{type(error).__module__}.{type(error).__name__}"
        out["refused_text"] = str(error)
    if spec["mode"] == "mailers":
        out["relay"] = send_mail("Relayed", "Through the profile.", None,
                                 ["relayed@example.org"], using="relay")
    runner = DiscoverRunner(verbosity=0, interactive=False)
    out["locmem_failures"] = runner.run_tests(["tests.support.django_app.locmem_case"])
    return out


def main() -> None:
    spec = json.loads(os.environ["TEST_DJANGO_SCENARIO"])
    configure(spec)
    result = run(spec)
    sys.stdout.write("\nRESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
