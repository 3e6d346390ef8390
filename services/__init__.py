"""tenderwatch services: one package per deployable service, plus the shared runtime."""
