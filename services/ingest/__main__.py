"""`python -m services.ingest`: run the ingest service."""

from services.ingest.app import SERVICE, Ingest
from services.runtime.service import serve
from services.runtime.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    serve(Ingest(settings).asgi(), settings, service=SERVICE)
