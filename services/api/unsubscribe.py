"""One-click unsubscribe (RFC 8058): the pages behind the `List-Unsubscribe` link of every alert email.

- `GET /v1/unsubscribe/{token}` shows what the link would pause and a button, in French and English, and changes
  nothing: mail scanners and link previews open links on their own.
- `POST /v1/unsubscribe/{token}` with the body `List-Unsubscribe=One-Click` (what mailbox providers send, and what
  the page's button sends) pauses the subscriptions the email was sent for (`active` false, published on
  `subscriptions.changes` through the outbox so the matcher drops them) and answers 200 with a short page, never a
  redirect. Posting again changes nothing and says so.

The token is checked with UNSUBSCRIBE_SECRET against the subscriptions' current address
(services/runtime/unsubscribe_tokens.py): a malformed token answers 400, one that does not check out 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as default_policy
from html import escape
from urllib.parse import parse_qs

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from schemas import Subscription, SubscriptionChange, Topic
from services.api import outbox
from services.api.records import subscription_from_row
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.unsubscribe_tokens import token_matches, token_subscriptions

_log = logging.getLogger(__name__)

_MAX_BODY_BYTES = 16 * 1024
_ONE_CLICK = ("List-Unsubscribe", "One-Click")
# The pages load nothing and post only to themselves; nobody should index or frame them, nor cache them.
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class _Verified:
    email: str
    subscriptions: list[asyncpg.Record]  # the token's subscriptions that still email that address


def router(settings: Settings, runtime: Runtime) -> APIRouter:
    """The two routes, reading subscriptions from the API's database and writing the outbox."""
    routes = APIRouter()

    @routes.get("/v1/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe page (changes nothing)")
    async def unsubscribe_page(token: str) -> HTMLResponse:
        checked = await _check(settings, runtime.pool, token)
        if isinstance(checked, HTMLResponse):
            return checked
        active = [r for r in checked.subscriptions if r["active"]]
        if not active:
            return _page(200, _ALREADY_FR, _ALREADY_EN, names=_names(checked.subscriptions))
        return _page(200, _CONFIRM_FR, _CONFIRM_EN, names=_names(active), email=_masked(checked.email), form=True)

    @routes.post("/v1/unsubscribe/{token}", response_class=HTMLResponse, summary="One-click unsubscribe (RFC 8058)")
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        checked = await _check(settings, runtime.pool, token)
        if isinstance(checked, HTMLResponse):
            return checked
        fields = await _form_fields(request)
        if fields is None or fields.get(_ONE_CLICK[0]) != _ONE_CLICK[1]:
            return _page(400, _BAD_BODY_FR, _BAD_BODY_EN)
        paused = await _pause(runtime.pool, [r["subscription_id"] for r in checked.subscriptions])
        _log.info("unsubscribed", extra={"subscriptions": [s.subscription_id for s in paused]})
        if not paused:
            return _page(200, _ALREADY_FR, _ALREADY_EN, names=_names(checked.subscriptions))
        return _page(200, _DONE_FR, _DONE_EN, names=[s.name for s in paused], email=_masked(checked.email))

    return routes


async def _check(settings: Settings, pool: asyncpg.Pool, token: str) -> _Verified | HTMLResponse:
    """The subscriptions the token may pause, or the error page to answer."""
    secret = settings.unsubscribe_secret
    if secret is None:
        return _page(404, _DISABLED_FR, _DISABLED_EN)
    ids = token_subscriptions(token)
    if ids is None:
        return _page(400, _MALFORMED_FR, _MALFORMED_EN)
    rows = await pool.fetch(
        """SELECT subscription_id, account_id, name, filters, delivery, active, created_at, updated_at
           FROM subscriptions WHERE subscription_id = ANY($1::text[]) ORDER BY name, subscription_id""",
        ids,
    )
    by_email: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        email = (json.loads(row["delivery"]).get("email") or "").strip().lower()
        if email:
            by_email.setdefault(email, []).append(row)
    # The previous key, while set, keeps the links of emails sent before a rotation working.
    keys = [key.get_secret_value() for key in (secret, settings.unsubscribe_previous_secret) if key is not None]
    for email, subscriptions in by_email.items():
        if any(token_matches(key, token, ids, email) for key in keys):
            return _Verified(email, subscriptions)
    return _page(404, _UNKNOWN_FR, _UNKNOWN_EN)


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The posted form's fields, urlencoded or multipart; None for a body too large or unreadable."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY_BYTES:
            return None
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=default_policy).parsebytes(header + bytes(body))
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace").strip()
        return fields
    try:
        parsed = parse_qs(bytes(body).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return {name: values[0].strip() for name, values in parsed.items()}


async def _pause(pool: asyncpg.Pool, subscription_ids: Sequence[str]) -> list[Subscription]:
    """Pause the active ones among `subscription_ids` and publish each change; returns those paused now."""
    paused: list[Subscription] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """UPDATE subscriptions SET active = false, updated_at = $2
               WHERE subscription_id = ANY($1::text[]) AND active
               RETURNING subscription_id, account_id, name, filters, delivery, active, created_at, updated_at""",
            list(subscription_ids),
            datetime.now(UTC),
        )
        for row in rows:
            subscription = subscription_from_row(row)
            await outbox.add(
                conn,
                topic=Topic.SUBSCRIPTIONS_CHANGES.value,
                key=subscription.subscription_id,
                value=SubscriptionChange(subscription=subscription).model_dump_json().encode(),
            )
            paused.append(subscription)
    return paused


def _names(rows: Sequence[asyncpg.Record]) -> list[str]:
    return [str(r["name"]) for r in rows]


def _masked(email: str) -> str:
    """`co•••@dupont.example`: enough to recognise one's address, not enough to read it off a leaked link."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}•••@{domain}"


# --- pages ---------------------------------------------------------------------------------------------------------

_CONFIRM_FR = ("Se désabonner ?", "Vous ne recevrez plus à l'adresse {email} les alertes suivantes :", "Me désabonner")
_CONFIRM_EN = ("Unsubscribe?", "You will no longer receive these alerts at {email}:", "Unsubscribe me")
_DONE_FR = ("Vous êtes désabonné", "Ces alertes ne seront plus envoyées à {email} :", "")
_DONE_EN = ("You are unsubscribed", "These alerts will no longer be sent to {email}:", "")
_ALREADY_FR = ("Déjà désabonné", "Ces alertes sont déjà en pause ; rien n'a changé :", "")
_ALREADY_EN = ("Already unsubscribed", "These alerts are already paused; nothing changed:", "")
_MALFORMED_FR = (
    "Lien de désabonnement invalide",
    "Ce lien est incomplet ou a été modifié. Copiez le lien entier depuis l'e-mail, ou utilisez le lien d'un e-mail "
    "plus récent.",
    "",
)
_MALFORMED_EN = (
    "Invalid unsubscribe link",
    "This link is incomplete or was altered. Copy the whole link from the email, or use the link of a more recent "
    "email.",
    "",
)
_UNKNOWN_FR = (
    "Lien de désabonnement inconnu",
    "Ce lien ne correspond à aucune alerte active : elle a pu être supprimée, ou envoyée à une autre adresse depuis. "
    "Utilisez le lien d'un e-mail plus récent.",
    "",
)
_UNKNOWN_EN = (
    "Unknown unsubscribe link",
    "This link matches no current alert: it may have been deleted, or now be sent to another address. Use the link "
    "of a more recent email.",
    "",
)
_BAD_BODY_FR = (
    "Demande incomplète",
    "Pour vous désabonner, utilisez le bouton de la page de désabonnement (le formulaire doit envoyer "
    "List-Unsubscribe=One-Click).",
    "",
)
_BAD_BODY_EN = (
    "Incomplete request",
    "To unsubscribe, use the button of the unsubscribe page (the form must send List-Unsubscribe=One-Click).",
    "",
)
_DISABLED_FR = ("Désabonnement indisponible", "Les liens de désabonnement ne sont pas activés sur ce serveur.", "")
_DISABLED_EN = ("Unsubscribe unavailable", "Unsubscribe links are not enabled on this server.", "")


def _page(
    status: int,
    french: tuple[str, str, str],
    english: tuple[str, str, str],
    *,
    names: Sequence[str] = (),
    email: str = "",
    form: bool = False,
) -> HTMLResponse:
    """A small bilingual page: French first, then English. Every value is escaped."""
    sections = []
    for lang, (title, text, button) in (("fr", french), ("en", english)):
        items = "".join(f"<li>{escape(name)}</li>" for name in names)
        listed = f'<ul style="margin:8px 0 16px;padding-left:20px;">{items}</ul>' if names else ""
        action = (
            '<form method="post" style="margin:0;">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit" style="padding:10px 18px;border:0;border-radius:4px;background:#0b57d0;'
            f'color:#ffffff;font-size:15px;font-weight:bold;cursor:pointer;">{escape(button)}</button></form>'
            if form
            else ""
        )
        sections.append(
            f'<section lang="{lang}" style="margin:0 0 28px;">'
            f'<h1 style="margin:0 0 10px;font-size:21px;">{escape(title)}</h1>'
            f'<p style="margin:0;line-height:1.5;">{escape(text.format(email=email))}</p>{listed}{action}</section>'
        )
    html = (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tenderwatch — {escape(french[0])} / {escape(english[0])}</title></head>"
        '<body style="margin:0;padding:24px 12px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;'
        'color:#1c1e21;"><main style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;'
        'border-radius:6px;"><p style="margin:0 0 20px;font-weight:bold;color:#12284c;">tenderwatch</p>'
        f"{''.join(sections)}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)
