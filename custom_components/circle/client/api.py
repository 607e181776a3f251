"""Circle's Headless Member API (`/api/headless/v1`), the calls this product needs."""

from __future__ import annotations

from collections.abc import Mapping
import logging
import time
from typing import TYPE_CHECKING, Any

from .errors import (
    CircleApiError,
    CircleAuthenticationError,
    CircleInvalidInputError,
    CircleRateLimitError,
)
from .http import DEFAULT_TIMEOUT, error_message, request_json
from .models import (
    ChatMessage,
    ChatRoom,
    Member,
    MessagePage,
    SentMessage,
    as_count,
    as_id,
    parse_datetime,
    plain_to_rich_text,
    valid_room_key,
)
from .retry_after import clamp_retry_after

if TYPE_CHECKING:
    import aiohttp

    from .auth import AccessTokenProvider

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/headless/v1"


def _room_path(uuid: Any) -> str:
    """Check a room uuid before it goes into a URL path (^[A-Za-z0-9-]{1,64}$)."""
    if type(uuid) is not str or not valid_room_key(uuid):
        raise CircleInvalidInputError("Invalid chat room uuid")
    return uuid


class CircleMemberApi:
    """REST calls made as the member, with one renewal and retry on an expired token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        auth: AccessTokenProvider,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Every call goes through the caller's session."""
        self._session = session
        self._base_url = base_url.rstrip("/") + API_PREFIX
        self._auth = auth
        self._timeout = request_timeout
        self._blocked_until = 0.0

    def __repr__(self) -> str:
        """No secret lives here, but say so plainly."""
        return f"CircleMemberApi({self._base_url})"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        remaining = self._blocked_until - time.monotonic()
        if remaining > 0:
            # Honour an earlier 429 for every caller, without spending a request.
            raise CircleRateLimitError(
                f"Circle rate limit: retry in {remaining:.0f} s", remaining
            )
        token = await self._auth.async_get_access_token()
        for attempt in (1, 2):
            try:
                status, body = await request_json(
                    self._session,
                    method,
                    self._base_url + path,
                    headers={"Authorization": f"Bearer {token}"},
                    params=params,
                    json_body=json_body,
                    timeout=self._timeout,
                )
            except CircleRateLimitError as err:
                self._blocked_until = time.monotonic() + clamp_retry_after(
                    err.retry_after
                )
                raise
            if status == 401:
                message = error_message(body)
                if attempt == 1:
                    _LOGGER.debug("Access token refused (%s); renewing once", message)
                    token = await self._auth.async_invalidate(token)
                    continue
                raise CircleAuthenticationError(
                    f"Circle refused the member's access token (401: {message or 'unauthorized'})"
                )
            if status >= 400:
                raise CircleApiError(
                    f"{method} {path} failed ({status}: {error_message(body)})", status
                )
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    async def async_get_member(self) -> Member:
        """Return the member the token belongs to."""
        member = Member.from_json(await self._request("GET", "/community_member"))
        if member is None:
            raise CircleApiError("Circle's member answer has no id")
        return member

    async def async_get_new_notifications_count(self) -> int:
        """Return the badge counter that the notification-count events update."""
        body = await self._request("GET", "/notifications/new_notifications_count")
        count = (
            body.get("new_notifications_count") if isinstance(body, Mapping) else None
        )
        count = as_count(count)
        if count is None:
            raise CircleApiError("Circle's notification count answer has no count")
        return count

    async def async_reset_new_notifications_count(self) -> None:
        """Set the badge counter to zero."""
        await self._request("POST", "/notifications/reset_new_notifications_count")

    async def async_mark_all_notifications_read(self) -> None:
        """Mark every notification read."""
        await self._request("POST", "/notifications/mark_all_as_read")

    async def async_mark_notification_read(self, notification_id: int) -> None:
        """Mark one notification read."""
        if as_id(notification_id) is None:
            raise CircleInvalidInputError("Invalid notification id")
        await self._request("POST", f"/notifications/{notification_id}/mark_as_read")

    async def async_get_unread_chat_room_uuids(self) -> list[str]:
        """Uuids of the rooms with unread messages."""
        body = await self._request("GET", "/messages/unread_chat_rooms")
        rooms = body.get("chat_rooms") if isinstance(body, Mapping) else None
        if not isinstance(rooms, list):
            raise CircleApiError("Circle's unread rooms answer has no list")
        uuids: list[str] = []
        for item in rooms:
            if isinstance(item, str):
                if valid_room_key(item):
                    uuids.append(item)
            elif (room := ChatRoom.from_json(item)) is not None:
                uuids.append(room.uuid)
        return uuids

    async def async_get_unread_chat_thread_ids(self) -> list[int]:
        """Ids of the threads with unread replies."""
        body = await self._request("GET", "/chat_threads/unread_chat_threads")
        ids = body.get("chat_thread_ids") if isinstance(body, Mapping) else None
        if not isinstance(ids, list):
            return []
        return [i for item in ids if (i := as_id(item)) is not None]

    async def async_get_chat_rooms(
        self, *, per_page: int = 100, max_pages: int = 10
    ) -> list[ChatRoom]:
        """Every chat room of the member (records flat or wrapped as {"chat_room": ...})."""
        rooms, _complete = await self.async_list_chat_rooms(
            per_page=per_page, max_pages=max_pages
        )
        return rooms

    async def async_list_chat_rooms(
        self, *, per_page: int = 100, max_pages: int = 10
    ) -> tuple[list[ChatRoom], bool]:
        """Return the member's chat rooms, and whether that is all of them."""
        rooms: list[ChatRoom] = []
        for page in range(1, max_pages + 1):
            body = await self._request(
                "GET", "/messages", params={"page": page, "per_page": per_page}
            )
            records = body.get("records") if isinstance(body, Mapping) else None
            if not isinstance(records, list):
                raise CircleApiError("Circle's chat rooms answer has no records")
            rooms.extend(
                room for r in records if (room := ChatRoom.from_json(r)) is not None
            )
            if not body.get("has_next_page"):
                return rooms, True
        return rooms, False

    async def async_get_chat_room(self, uuid: str) -> ChatRoom:
        """One chat room."""
        path = f"/messages/{_room_path(uuid)}"
        room = ChatRoom.from_json(await self._request("GET", path))
        if room is None:
            raise CircleApiError("Circle's chat room answer has no uuid")
        return room

    async def async_get_messages(
        self,
        uuid: str,
        *,
        around_id: int | None = None,
        previous: int = 20,
        following: int = 20,
    ) -> MessagePage:
        """Messages of a room around a message id (default: the latest), oldest first."""
        params: dict[str, Any] = {
            "previous_per_page": previous,
            "next_per_page": following,
        }
        path = f"/messages/{_room_path(uuid)}/chat_room_messages"
        if around_id is not None:
            if as_id(around_id) is None:
                raise CircleInvalidInputError("Invalid message id")
            params["id"] = around_id
        body = await self._request("GET", path, params=params)
        if not isinstance(body, Mapping) or not isinstance(body.get("records"), list):
            raise CircleApiError("Circle's messages answer has no records")
        messages = [
            message
            for record in body["records"]
            if isinstance(record, Mapping)
            and (message := ChatMessage.from_json(record))
        ]
        messages.sort(key=lambda m: m.id)
        return MessagePage(
            messages=messages,
            has_previous_page=bool(body.get("has_previous_page")),
            has_next_page=bool(body.get("has_next_page")),
            first_id=as_id(body.get("first_id")),
            last_id=as_id(body.get("last_id")),
        )

    async def async_mark_chat_room_read(self, uuid: str) -> None:
        """Mark every message of a room read."""
        await self._request("POST", f"/messages/{_room_path(uuid)}/mark_all_as_read")

    async def async_send_message(
        self, uuid: str, text: str, *, parent_message_id: int | None = None
    ) -> SentMessage:
        """Send plain text; Circle creates the message asynchronously."""
        path = f"/messages/{_room_path(uuid)}/chat_room_messages"
        if parent_message_id is not None and as_id(parent_message_id) is None:
            raise CircleInvalidInputError("Invalid parent message id")
        body = await self._request(
            "POST",
            path,
            json_body={
                "rich_text_body": plain_to_rich_text(text),
                "parent_message_id": parent_message_id,
            },
        )
        answer = body if isinstance(body, Mapping) else {}
        creation = answer.get("creation_uuid")
        parent = as_id(answer.get("parent_message_id"))
        return SentMessage(
            chat_room_uuid=uuid,
            creation_uuid=creation[:64] if isinstance(creation, str) else None,
            parent_message_id=parent if parent is not None else parent_message_id,
            sent_at=parse_datetime(answer.get("sent_at")),
        )
