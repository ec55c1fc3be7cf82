"""Django settings, read from the instance's etc/lavasite.ini.

The scripts in bin/ set LAVASITE_INSTANCE (the instance folder) and LAVASITE_RELEASE (the
release folder they belong to) before anything is imported.
"""

import configparser
import os

INSTANCE = os.environ["LAVASITE_INSTANCE"]
RELEASE = os.environ.get("LAVASITE_RELEASE", "")

_ini = configparser.ConfigParser(interpolation=None)
_found = _ini.read(os.path.join(INSTANCE, "etc", "lavasite.ini"))
if not _found:
    raise RuntimeError(f"{INSTANCE}/etc/lavasite.ini is missing: run rbuildout first")

SECRET_KEY = _ini["django"]["secret-key"]
DEBUG = _ini.getboolean("django", "debug")
ALLOWED_HOSTS = _ini["django"]["allowed-hosts"].split()

ROOT_URLCONF = "lavasite.urls"
WSGI_APPLICATION = "lavasite.wsgi.application"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _ini["paths"]["database"],
    }
}
USE_TZ = True
