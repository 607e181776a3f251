"""Sending as the member: bounded text, who may send, and the id of the created message.

Circle answers a send with 202 and a creation uuid only; the message id arrives with the
member's own message on the cable (or, failing that, in the room's latest messages).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)

from .client import ChatMessage, CircleError
from .const import CONF_ALLOW_NON_ADMIN, DOMAIN
from .errors import describe_error

if TYPE_CHECKING:
    from .coordinator import CircleCoordinator

MAX_MESSAGE_CHARS = 10_000
MAX_MESSAGE_BYTES = 30_000
MAX_MESSAGE_LINES = 200
MAX_TITLE_CHARS = 200
# How long a send waits for its message to come back with an id.
ID_WAIT = 3.0
SEEN_MAX = 64


class SentTracker:
    """The member's own recent messages by creation uuid, and the sends waiting for one."""

    def __init__(self) -> None:
        """Empty."""
        self._seen: OrderedDict[str, ChatMessage] = OrderedDict()
        self._waiting: dict[str, asyncio.Future[ChatMessage]] = {}

    def seen(self, message: ChatMessage) -> None:
        """Note an own message (bounded); wake the send that made it."""
        if not (key := message.creation_uuid):
            return
        self._seen[key] = message
        while len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        if (future := self._waiting.pop(key, None)) and not future.done():
            future.set_result(message)

    async def wait(self, creation_uuid: str, timeout: float) -> ChatMessage | None:
        """Return the message with this creation uuid once seen; None after `timeout`."""
        if message := self._seen.get(creation_uuid):
            return message
        future = asyncio.get_running_loop().create_future()
        self._waiting[creation_uuid] = future
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(creation_uuid, None)


def invalid_input(key: str, **placeholders: Any) -> ServiceValidationError:
    """Return the translated validation error `key` (actions and the notify entity)."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def compose(message: str, title: str | None = None) -> str:
    """Return the text to send: the title as first line; bounded in chars, bytes, lines."""
    text = message.strip()
    if title is not None and (title := title.strip()):
        if len(title) > MAX_TITLE_CHARS or "\n" in title:
            raise invalid_input("title_too_long", max=MAX_TITLE_CHARS)
        text = f"{title}\n{text}" if text else title
    if not text:
        raise invalid_input("empty_message")
    if len(text) > MAX_MESSAGE_CHARS:
        raise invalid_input("message_too_long", length=len(text), max=MAX_MESSAGE_CHARS)
    if (size := len(text.encode())) > MAX_MESSAGE_BYTES:
        raise invalid_input("message_too_large", size=size, max=MAX_MESSAGE_BYTES)
    if (lines := text.count("\n") + 1) > MAX_MESSAGE_LINES:
        raise invalid_input(
            "message_too_many_lines", lines=lines, max=MAX_MESSAGE_LINES
        )
    return text


async def async_check_sender(
    hass: HomeAssistant, coordinator: CircleCoordinator, context: Context | None
) -> None:
    """Acting as the member is for administrators, unless the options allow every user.

    Calls without a user (automations, scripts, the mobile app's actions) were set up by
    an administrator and pass.
    """
    if coordinator.config_entry.options.get(CONF_ALLOW_NON_ADMIN, False):
        return
    if context is None or context.user_id is None:
        return
    user = await hass.auth.async_get_user(context.user_id)
    if user is None or not user.is_admin:
        raise Unauthorized(context=context, permission="circle_send")


async def circle_call[T](call: Awaitable[T]) -> T:
    """Turn client errors into translated Home Assistant errors."""
    try:
        result: T = await call
    except CircleError as err:
        raise HomeAssistantError(**describe_error(err, "action_failed")) from err
    return result


async def async_send(
    coordinator: CircleCoordinator,
    uuid: str,
    text: str,
    parent_message_id: int | None = None,
    *,
    want_id: bool = False,
) -> dict[str, Any]:
    """Send; the response of send_message and reply.

    The new message's id is looked for (up to ID_WAIT on the cable, then a REST read) only
    when the caller wants it back (`want_id`): nobody waits for an id nobody reads.
    """
    sent = await circle_call(
        coordinator.api.async_send_message(
            uuid, text, parent_message_id=parent_message_id
        )
    )
    message = None
    if want_id and sent.creation_uuid:
        message = await coordinator.activity.sent.wait(sent.creation_uuid, ID_WAIT)
        if message is None and parent_message_id is None:
            message = await _read_back(coordinator, uuid, sent.creation_uuid)
    when = message.sent_at if message and message.sent_at else sent.sent_at
    return {
        "id": message.id if message else None,
        "room_uuid": sent.chat_room_uuid,
        "parent_message_id": sent.parent_message_id,
        "creation_uuid": sent.creation_uuid,
        "sent_at": when.isoformat() if when else None,
    }


async def _read_back(
    coordinator: CircleCoordinator, uuid: str, creation_uuid: str
) -> ChatMessage | None:
    """Look in the room's latest messages, when the cable did not bring the message back."""
    try:
        page = await coordinator.api.async_get_messages(uuid, previous=20, following=0)
    except CircleError:
        return None
    return next((m for m in page.messages if m.creation_uuid == creation_uuid), None)
