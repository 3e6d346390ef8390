"""`python -m services.api`: run the HTTP API."""

from services.api.app import SERVICE, Api
from services.runtime.service import serve
from services.runtime.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    serve(Api(settings).asgi(), settings, service=SERVICE)
