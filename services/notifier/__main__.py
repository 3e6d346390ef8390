"""`python -m services.notifier`: run the notifier service."""

from services.notifier.app import SERVICE, Notifier
from services.runtime.service import serve
from services.runtime.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    serve(Notifier(settings).asgi(), settings, service=SERVICE)
