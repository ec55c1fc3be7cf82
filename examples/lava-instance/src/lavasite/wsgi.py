"""The WSGI application: `bin/gunicorn -c etc/gunicorn.conf.py lavasite.wsgi`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lavasite.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
