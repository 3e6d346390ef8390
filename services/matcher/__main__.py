"""`python -m services.matcher`: run the matcher service."""

from services.matcher.app import SERVICE, Matcher
from services.runtime.service import serve
from services.runtime.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    serve(Matcher(settings).asgi(), settings, service=SERVICE)
