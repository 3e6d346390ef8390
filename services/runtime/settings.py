"""Settings from the environment, one object for every service (documented in the README)."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """`15s`, `5m`, `2h`, `5d`, a number of seconds, or ISO 8601 (`P5D`); anything else is left to pydantic."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (found := _DURATION.match(value.strip().lower())):
        return timedelta(seconds=float(found.group(1)) * _DURATION_UNITS[found.group(2) or "s"])
    return value


def _retry_schedule(value: Any) -> Any:
    """`0s,5s,5m,...`: the wait before each attempt, the first being the first attempt's (0: at once)."""
    if isinstance(value, str):
        value = [part for part in value.replace(" ", "").split(",") if part]
    if not isinstance(value, list | tuple):
        return value
    delays = tuple(TypeAdapter(timedelta).validate_python(_duration(part)) for part in value)
    if not delays or delays[0] != timedelta(0):
        raise ValueError("the first entry is the first attempt's wait and must be 0s (it is made at once)")
    if any(delay < timedelta(0) for delay in delays):
        raise ValueError("waits between attempts must not be negative")
    return delays


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(
        default="", description="host:port[,host:port]; empty starts the embedded broker (`tenderwatch run`)"
    )
    kafka_enable_idempotence: bool = Field(
        default=True, description="idempotent producer; the embedded broker refuses it, so it is turned off there"
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="longest a consumer's fetch waits for data; Apache Kafka answers as soon as a message arrives, "
        "the embedded broker only after this wait, so `tenderwatch run` lowers it",
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
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user; unset sends without logging in")
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="upgrade the connection with STARTTLS, and require it")
    smtp_use_tls: bool = Field(default=False, description="implicit TLS from the first byte (port 465 relays)")
    smtp_validate_certs: bool = Field(
        default=True, description="check the SMTP server's TLS certificate and host name (turn off for tests only)"
    )
    smtp_ca_file: str | None = Field(
        default=None, description="CA certificates (PEM) the SMTP server's certificate is checked against"
    )
    smtp_timeout: float = 30.0
    smtp_pool_size: int = Field(
        default=4, ge=1, le=100, description="SMTP connections the notifier keeps open and reuses, per instance"
    )
    smtp_retry_schedule: Annotated[tuple[timedelta, ...], NoDecode] = Field(
        default=_retry_schedule("0s,30s,2m,10m,30m,1h,2h,4h"),
        description="wait before each attempt of an email the server deferred (4xx) or that could not be sent, "
        "comma-separated like WEBHOOK_RETRY_SCHEDULE; after the last the delivery fails",
    )
    mail_from: str = "tenderwatch <alertes@tenderwatch.localhost>"
    message_id_domain: str = "tenderwatch.localhost"
    list_id_domain: str = Field(
        default="", description="domain of the List-Id header (`<account.alerts.DOMAIN>`); empty: MESSAGE_ID_DOMAIN"
    )
    digest_max_notices: int = Field(
        default=50, ge=1, le=500, description="notices shown in full in a daily or weekly digest; the rest as links"
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None,
        description="key of the HMAC that signs one-click unsubscribe links (32+ random bytes); required when "
        "PUBLIC_BASE_URL is not a loopback address; `tenderwatch run` generates one per run",
    )
    unsubscribe_previous_secret: SecretStr | None = Field(
        default=None,
        description="the key UNSUBSCRIBE_SECRET had before a rotation: the api still accepts the links it signed "
        "while it is set, so emails already sent keep working; leave it unset when the old key may have leaked",
    )

    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where the API is reached by people, written in emails; https unless it is a loopback address",
    )
    ingest_url: str = Field(default="http://127.0.0.1:8001", description="where the API reaches the ingest service")

    publish_open_to_all: bool = Field(
        default=False, description="let every account publish notices; otherwise an operator grants the right"
    )
    operator_token: SecretStr | None = Field(
        default=None, description="bearer token of the operator endpoints (/v1/admin/...); unset disables them"
    )

    matcher_huge_pages: bool = Field(
        default=True,
        description="once its subscription index is built, the matcher moves its memory onto transparent huge pages "
        "(Linux 6.1 and later; elsewhere it logs why not): fewer TLB misses, the decision's p99 about a quarter lower "
        "at a million subscriptions",
    )

    webhook_allow_private: bool = Field(
        default=False, description="allow webhooks to loopback/private addresses (local development only)"
    )
    webhook_timeout: float = Field(
        default=15.0, gt=0, description="seconds one webhook call may take in all: resolve, connect, send, read"
    )
    webhook_max_response_bytes: int = Field(
        default=64 * 1024, ge=0, description="how much of a webhook answer's body is read; the rest is never read"
    )
    webhook_retry_schedule: Annotated[tuple[timedelta, ...], NoDecode] = Field(
        default=_retry_schedule("0s,5s,5m,30m,2h,5h,10h,10h"),
        description="wait before each webhook attempt, comma-separated (`5s`, `5m`, `2h`, `1d`); the first is 0s: "
        "attempt 1 is made at once, then each failure waits the next entry; after the last the delivery fails",
    )
    webhook_max_in_flight_per_endpoint: int = Field(
        default=4, ge=1, description="webhook requests in flight at once to one endpoint, so a slow one delays no other"
    )
    webhook_disable_after: timedelta = Field(
        default=timedelta(days=5), description="an endpoint whose calls all fail for this long is disabled, owner told"
    )
    webhook_secret_overlap: timedelta = Field(
        default=timedelta(hours=24), description="after a secret rotation, how long the old secret keeps signing too"
    )
    delivery_claim_lease: timedelta = Field(
        default=timedelta(minutes=2),
        description="how long a notifier instance holds the deliveries and digests it claimed: those of an instance "
        "that crashed are sent again after it (same Message-ID and webhook-id); at least twice WEBHOOK_TIMEOUT and "
        "SMTP_TIMEOUT",
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8004", description="where the API reaches the notifier (webhook delivery history)"
    )
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

    @field_validator("smtp_retry_schedule", mode="before")
    @classmethod
    def _parse_smtp_retry_schedule(cls, value: Any) -> Any:
        return _retry_schedule(value)

    @field_validator("unsubscribe_secret", "unsubscribe_previous_secret", "operator_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        # `KEY=` in an env file or a compose default of "": an empty key would sign and accept anything.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _public_links_are_safe(self) -> Settings:
        """Links people click in emails: https and signed unsubscribe links, except on a loopback address."""
        if _is_loopback_url(self.public_base_url):
            return self
        if not self.public_base_url.startswith("https://"):
            raise ValueError(
                f"PUBLIC_BASE_URL {self.public_base_url!r} must be an https URL (one-click unsubscribe links need "
                "https); plain http is only accepted for a loopback address such as http://127.0.0.1:8000"
            )
        if self.unsubscribe_secret is None or len(self.unsubscribe_secret.get_secret_value()) < 16:
            raise ValueError(
                "UNSUBSCRIBE_SECRET must be set (at least 16 characters, e.g. 32 random bytes in base64) when "
                "PUBLIC_BASE_URL is a public address: it signs the unsubscribe links of every email"
            )
        return self

    @model_validator(mode="after")
    def _claims_outlast_a_send(self) -> Settings:
        """A claim that expired while its send is still going would let another instance send it as well."""
        longest_send = max(self.webhook_timeout, self.smtp_timeout)
        if self.delivery_claim_lease.total_seconds() < 2 * longest_send:
            raise ValueError(
                f"DELIVERY_CLAIM_LEASE ({self.delivery_claim_lease.total_seconds():g} s) must be at least twice the "
                f"longest send (WEBHOOK_TIMEOUT / SMTP_TIMEOUT: {longest_send:g} s)"
            )
        return self

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _parse_retry_schedule(cls, value: Any) -> Any:
        return _retry_schedule(value)

    @field_validator("webhook_disable_after", "webhook_secret_overlap", "delivery_claim_lease", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return _duration(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
