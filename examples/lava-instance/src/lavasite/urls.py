import os

from django.http import HttpResponse
from django.urls import path


def hello(request):
    """Names the release this process runs from."""
    revision = os.path.basename(os.environ.get("LAVASITE_RELEASE", "")) or "unknown"
    return HttpResponse(f"hello from {revision}\n", content_type="text/plain")


urlpatterns = [path("", hello)]
