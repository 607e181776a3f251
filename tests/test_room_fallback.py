"""The room channel's parameter fallback, sans-IO, in the orders a real server answers in."""

from __future__ import annotations

from custom_components.circle.client.subscriptions import (
    Subscription,
    SubscriptionBook,
    SubscriptionState,
)

ROOM = 10


def book_with_room(
    room_param: str | None = None,
) -> tuple[SubscriptionBook, Subscription]:
    book = SubscriptionBook(42, room_ids=(ROOM,), room_param=room_param)
    sub = book.find_room(ROOM)
    assert sub is not None
    return book, sub


def test_a_parameter_that_only_timed_out_is_tried_again_after_a_reconnect() -> None:
    """A dying socket leaves every subscribe unanswered: that proves nothing about it."""
    book, sub = book_with_room("chat_room_id")
    assert sub.param == "chat_room_id"
    moved = book.replace_room(sub, timed_out=True)  # no answer before the socket died
    assert moved is not None and moved.param == "id"
    book.new_connection()
    assert (
        book.next_room_param(moved) == "chat_room_id"
    )  # refused "id": the learned one
    again = book.replace_room(moved)
    assert again is not None and again.param == "chat_room_id"


def test_one_connection_tries_each_parameter_once() -> None:
    book, sub = book_with_room()
    params = []
    current: Subscription | None = sub
    while current is not None:
        params.append(current.param)
        current = book.replace_room(current)
    assert params == ["chat_room_id", "id"]  # no uuid known: two candidates, no loop


def test_a_late_confirmation_of_an_unfollowed_room_adopts_nothing() -> None:
    book, sub = book_with_room()
    replacement = book.replace_room(sub, timed_out=True)
    assert replacement is not None
    book.remove(replacement)  # unfollowed while the first subscribe was unanswered
    assert book.drop_superseded(ROOM) == [sub]
    assert book.adopt_superseded(sub.identifier) == (None, None)
    assert book.find_room(ROOM) is None
    # Even if the set-aside one were still kept, nothing of the room comes back.
    book2, sub2 = book_with_room()
    replacement2 = book2.replace_room(sub2, timed_out=True)
    assert replacement2 is not None
    book2.remove(replacement2)
    assert book2.adopt_superseded(sub2.identifier) == (None, None)
    assert book2.find_room(ROOM) is None


def test_only_a_subscription_still_in_the_book_is_replaced() -> None:
    book, sub = book_with_room()
    book.remove(sub)  # unfollowed while an answer or a timeout was on its way
    assert book.replace_room(sub) is None
    assert book.find_room(ROOM) is None
    assert sub.state is SubscriptionState.PENDING
