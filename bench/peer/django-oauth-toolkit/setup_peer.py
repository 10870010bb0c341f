"""Create the peer's database and its one confidential client-credentials client.

Usage: python setup_peer.py CLIENT_ID CLIENT_SECRET (with PEER_DB and PEER_DJANGO_SECRET set).
The secret is stored unhashed (hash_client_secret=False): DOT's default hashes it with Django's
password hasher (PBKDF2, about a million iterations), which would make every token request cost a
password verification; Berth's client secrets are high-entropy and checked with a fast hash.
"""
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

call_command("migrate", verbosity=0)
Application.objects.create(
    name="bench",
    client_id=sys.argv[1],
    client_secret=sys.argv[2],
    client_type=Application.CLIENT_CONFIDENTIAL,
    authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    hash_client_secret=False,
)
