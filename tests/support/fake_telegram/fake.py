"""One test's fake Bot API: the calls the bot made, the failures planned for it, and the
long poll and the methods served over HTTP."""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiogram.types import Update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from tests.support.fake_telegram.methods import BotApiMethods, Described
from tests.support.fake_telegram.state import Poll, commands_key
from tests.support.fake_telegram.updates import (
    TgChat,
    update_ids,
)
from tests.support.fake_telegram.wire import (
    ApiError,
    Json,
    as_int,
    chat_type_of,
    error_response,
    read_params,
)
from tests.support.telegram import TEST_BOT_TOKEN


@dataclass(frozen=True, slots=True)
class RecordedCall:
    method: str  # as Telegram names it (sendMessage), whatever case the client used
    params: dict[str, Any]  # form fields with their JSON values decoded
    at: float  # time.monotonic()
    token: str


@dataclass
class _Failure:
    code: int
    description: str
    parameters: Json
    times: int


_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class FakeTelegram(BotApiMethods):
    """One test's view of the fake Bot API: what the bot called, the updates it will get, the
    failures planned for it, and the state of the chats it wrote in."""

    def __init__(self, base_url: str, *, token: str = TEST_BOT_TOKEN) -> None:
        super().__init__(token)
        self.base_url = base_url
        self.calls: list[RecordedCall] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._call_event = asyncio.Event()
        self._canonical = {name.lower(): name for name in [*self._handlers, "getUpdates"]}
        self._other_bots: dict[str, FakeTelegram] = {}

    def add_bot(self, token: str, username: str, first_name: str = "Assistant") -> FakeTelegram:
        """Another bot Telegram knows (an assistant's own), served beside this one: its own
        getMe, calls, chats, updates and webhook. Telegram refuses any token it does not know."""
        other = FakeTelegram(self.base_url, token=token)
        other.bot_username, other.bot_first_name = username, first_name
        self._other_bots[token] = other
        return other

    def calls_to(self, method: str) -> list[RecordedCall]:
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 5.0,
        *,
        nth: int = 1,
    ) -> RecordedCall:
        """The nth call to `method` (that `predicate` accepts), made already or awaited."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._call_event
                    matching = [
                        call
                        for call in self.calls_to(method)
                        if predicate is None or predicate(call)
                    ]
                    if len(matching) >= nth:
                        return matching[nth - 1]
                    await event.wait()
        except TimeoutError:
            made = ", ".join(call.method for call in self.calls) or "none"
            raise TimeoutError(
                f"no call #{nth} to {method} within {timeout} s; calls made: {made}"
            ) from None

    def push_update(self, update: Json) -> int:
        """Queue an update for getUpdates; it gets a new update_id, which is returned."""
        update = {**copy.deepcopy(update), "update_id": next(update_ids)}
        Update.model_validate(update)  # a malformed update fails here, not in the Dispatcher
        self._remember(update)
        self._pending.append(update)
        self._wake_poll()
        return int(update["update_id"])

    @property
    def pending_updates(self) -> list[Json]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._pending)

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with an error. A 429 always carries
        retry_after (1 s unless given), as Telegram's do."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        parameters: Json = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else _DEFAULT_DESCRIPTIONS.get(error_code, "Unknown error")
            )
        failure = _Failure(error_code, description, parameters, times)
        self._failures.setdefault(method.lower(), deque()).append(failure)

    def set_admins(self, chat_id: int, user_ids: list[int], *, creator: int | None = None) -> None:
        """The chat's administrators (include fake.bot_id to make the bot one); `creator`, if
        given, is listed too, with status "creator". Everyone else is a "member"."""
        self._admins[chat_id] = (creator, [uid for uid in user_ids if uid != creator])
        self._chats.setdefault(chat_id, {"id": chat_id, "type": chat_type_of(chat_id)})

    def add_chat(self, chat: TgChat | Json) -> None:
        """Make a chat known (pushed updates do this for theirs): getChat answers for it."""
        data = chat.as_dict() if isinstance(chat, TgChat) else dict(chat)
        self._chats[int(data["id"])] = data

    def set_blocked(self, user_id: int, blocked: bool = True) -> None:
        """A user who blocked the bot: sending to them fails with 403."""
        if blocked:
            self._blocked.add(user_id)
        else:
            self._blocked.discard(user_id)

    def my_commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        return list(self._commands.get(commands_key(scope, language_code), []))

    def close(self) -> None:
        """End a pending long poll (the test is over)."""
        self._closed = True
        self._wake_poll()
        for other in self._other_bots.values():
            other.close()

    def _record(self, method: str, params: Json, token: str) -> None:
        self.calls.append(RecordedCall(method, params, time.monotonic(), token))
        event, self._call_event = self._call_event, asyncio.Event()
        event.set()

    def bot_for(self, token: str) -> FakeTelegram | None:
        """The bot of this token (this one, or one added); None: Telegram knows no such bot."""
        return self if token == self.token else self._other_bots.get(token)

    async def handle(self, request: Request, token: str, method: str) -> Response:
        if token != self.token:
            other = self.bot_for(token)
            if other is None:
                return error_response(ApiError(401, "Unauthorized"))
            return await other.handle(request, token, method)
        try:
            params = await read_params(request)
        except ApiError as error:
            return error_response(error)
        name = self._canonical.get(method.lower())
        self._record(name or method, params, token)
        try:
            if name is None:
                raise ApiError(404, "Not Found: method not found")
            self._planned_failure(name)
            if name == "getUpdates":
                result: Any = await self._get_updates(request.receive, params)
            else:
                result = self._handlers[name](params)
        except ApiError as error:
            return error_response(error)
        body: Json = {"ok": True, "result": result}
        if isinstance(result, Described):
            body = {"ok": True, "result": result.result, "description": result.description}
        return JSONResponse(body)

    def _planned_failure(self, method: str) -> None:
        plans = self._failures.get(method.lower())
        if not plans:
            return
        failure = plans[0]
        failure.times -= 1
        if failure.times <= 0:
            plans.popleft()
        raise ApiError(failure.code, failure.description, dict(failure.parameters))

    async def _get_updates(self, receive: Receive, params: Json) -> list[Json]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset")) or 0
        limit = min(max(as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(as_int(params.get("timeout")) or 0, 0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(map(str, allowed)) or None
        self._confirm(offset)
        if self._poll is not None:
            self._poll.superseded = True
            self._poll.wakeup.set()
        poll = self._poll = Poll()
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive, poll))
        watcher.add_done_callback(_consume)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                poll.wakeup.clear()
                updates = self._deliverable(limit)
                remaining = deadline - loop.time()
                if updates or poll.superseded or self._closed or remaining <= 0:
                    break
                if watcher.done():  # the client went away: nobody to answer
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await poll.wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            watcher.cancel()
            if self._poll is poll:
                self._poll = None
        if poll.superseded:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return updates

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._pending.popleft()
        elif offset < 0:
            while len(self._pending) > -offset:
                self._pending.popleft()

    def _deliverable(self, limit: int) -> list[Json]:
        def allowed(update: Json) -> bool:
            kind = next((key for key in update if key != "update_id"), "")
            if self._allowed_updates is None:
                return kind not in _DEFAULT_EXCLUDED_UPDATES
            return kind in self._allowed_updates

        # Telegram never creates the updates a bot did not ask for.
        self._pending = deque(update for update in self._pending if allowed(update))
        return [copy.deepcopy(update) for update in itertools.islice(self._pending, limit)]


async def _wait_for_disconnect(receive: Receive, poll: Poll) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    poll.wakeup.set()


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a receive() that failed as the connection closed: nothing to do
