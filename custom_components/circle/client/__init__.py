"""Circle (circle.so) headless client: member tokens, member REST API and the ActionCable cable.

Asyncio and aiohttp only, with no Home Assistant imports, so it can be published on its own:
this folder is also the `circle-cable` package (import name `circle_cable`; see README.md).
"""

from ._version import __version__
from .api import CircleMemberApi
from .auth import AccessTokenProvider, CircleAuth, StaticAccessToken, TokenSet
from .cable import (
    CableOptions,
    CircleCable,
    ConnectionState,
    ConnectionStatus,
    Subscription,
    SubscriptionState,
)
from .errors import (
    CircleApiError,
    CircleAuthenticationError,
    CircleConnectionError,
    CircleError,
    CircleMemberNotFoundError,
    CircleNotEligibleError,
    CircleRateLimitError,
)
from .models import (
    CableEvent,
    Channel,
    ChatMessage,
    ChatRoom,
    ChatRoomEvent,
    ChatThreadReadEvent,
    EventName,
    Member,
    MessageEvent,
    MessagePage,
    NewNotificationEvent,
    Notification,
    NotificationCountEvent,
    Sender,
    SentMessage,
)

__all__ = [
    "AccessTokenProvider",
    "CableEvent",
    "CableOptions",
    "Channel",
    "ChatMessage",
    "ChatRoom",
    "ChatRoomEvent",
    "ChatThreadReadEvent",
    "CircleApiError",
    "CircleAuth",
    "CircleAuthenticationError",
    "CircleCable",
    "CircleConnectionError",
    "CircleError",
    "CircleMemberApi",
    "CircleMemberNotFoundError",
    "CircleNotEligibleError",
    "CircleRateLimitError",
    "ConnectionState",
    "ConnectionStatus",
    "EventName",
    "Member",
    "MessageEvent",
    "MessagePage",
    "NewNotificationEvent",
    "Notification",
    "NotificationCountEvent",
    "Sender",
    "SentMessage",
    "StaticAccessToken",
    "Subscription",
    "SubscriptionState",
    "TokenSet",
    "__version__",
]
