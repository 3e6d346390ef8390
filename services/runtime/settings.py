"""Settings from the environment, one object for every service (documented in the README)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(
        default="", description="host:port[,host:port]; empty starts the embedded broker (`tenderwatch run`)"
    )
    kafka_enable_idempotence: bool = Field(
        default=True, description="idempotent producer; the embedded broker refuses it, so it is turned off there"
    )
    kafka_topic_partitions: int = Field(default=3, ge=1, description="partitions of topics created at start")
    kafka_replication_factor: int = Field(default=1, ge=1)
    database_url: SecretStr = Field(default=SecretStr(""), description="postgresql://user:password@host:port/db")
    database_pool_size: int = Field(default=5, ge=1)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=0, ge=0, le=65535, description="health/ready port; 0 picks the service default")

    log_level: str = "INFO"
    log_format: str = Field(default="json", description="'json' or 'text'")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout: float = 30.0
    mail_from: str = "tenderwatch <alertes@tenderwatch.localhost>"
    message_id_domain: str = "tenderwatch.localhost"

    public_base_url: str = Field(default="http://127.0.0.1:8000", description="where the API is reached by people")
    ingest_url: str = Field(default="http://127.0.0.1:8001", description="where the API reaches the ingest service")

    publish_open_to_all: bool = Field(
        default=False, description="let every account publish notices; otherwise an operator grants the right"
    )
    operator_token: SecretStr | None = Field(
        default=None, description="bearer token of the operator endpoints (/v1/admin/...); unset disables them"
    )

    webhook_allow_private: bool = Field(
        default=False, description="allow webhooks to loopback/private addresses (local development only)"
    )
    webhook_timeout: float = 10.0
    max_document_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    poll_sources: str = Field(
        default="", description="comma-separated pollers the ingest service runs on a schedule: ted, boamp, ocds"
    )
    poll_interval_seconds: float = Field(default=900.0, gt=0, description="pause between two scheduled polls")
    poll_since_days: int = Field(default=7, ge=0, description="how far back a poller's first run starts")
    ted_query: str = Field(default="organisation-country-buyer IN (FRA)", description="TED expert search query")
    ted_search_url: str = "https://api.ted.europa.eu/v3/notices/search"
    boamp_records_url: str = "https://boamp-datadila.opendatasoft.com/api/explore/v2.1/catalog/datasets/boamp/records"
    ocds_urls: str = Field(default="", description="comma-separated OCDS release-package endpoints to poll")

    processing_attempts: int = Field(
        default=5, ge=1, description="attempts on a transient error before a message goes to its dead-letter topic"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
