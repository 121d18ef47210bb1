"""A minimal Django project for the Django integration tests, run in a subprocess per Django
version (``python -m tests.support.django_app.scenario``); see tests/test_integration_django.py."""
