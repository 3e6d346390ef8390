"""`python -m services.classifier`: run the classifier service."""

from services.classifier.app import SERVICE, ClassifierService
from services.runtime.service import serve
from services.runtime.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    serve(ClassifierService(settings).asgi(), settings, service=SERVICE)
