"""What one running API process holds: the parts every process has (`wiring.process`), and the
socket hub, the abuse limits, the AI runner, the knowledge worker, the media cleanup loop and,
when this process runs it, the Telegram bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.ratelimit import create_rate_limiter
from core.settings import Settings
from services.auth import AuthConfig
from services.limits import AbuseLimits
from wiring.process import Process
from workers.ai_runner import AiRunner, start_runner
from workers.knowledge import KnowledgeWorker
from workers.media_cleanup import run_media_cleanup_forever
from ws.hub import Hub

if TYPE_CHECKING:
    # aiogram takes seconds to import: only a process that runs the bot imports it.
    from bot.app import TelegramBot
    from bot.notifications import Notifier

APP_AND_TELEGRAM = frozenset({"app", "telegram"})


@dataclass(slots=True)
class AppContext(Process):
    auth: AuthConfig
    hub: Hub
    limits: AbuseLimits
    runner: AiRunner | None
    # The bot, when this process runs it (`bot_mode`: polling, or webhook updates).
    telegram: TelegramBot | None
    bot_mode: Literal["off", "polling", "webhook"]
    notifier: Notifier | None
    knowledge_worker: KnowledgeWorker | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop_listening: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> AppContext:
        process = await Process.open(settings)
        sessionmaker, broker = process.sessionmaker, process.broker
        hub = Hub(
            sessionmaker,
            broker,
            queue_size=settings.ws_send_queue,
            send_timeout=settings.ws_send_timeout,
            presence_grace=settings.ws_presence_grace,
            typing_ttl=settings.ws_typing_ttl,
            gap_grace=settings.ws_gap_grace,
            resume_grace=settings.ws_resume_grace,
            presence_max_group_size=settings.presence_max_group_size,
            presence_store=process.presence,
        )
        bot_mode = settings.api_bot_mode() if settings.bot_token else "off"
        # Only a process that runs the bot talks to Telegram by itself (its dispatcher, the
        # replies it streams there, notifications); with BOT_MODE=off another process is the
        # bot (`python -m bot`), and this one calls the Bot API only for what a request asks
        # (an invoice link, a refund).
        telegram: TelegramBot | None = None
        if bot_mode != "off":
            from bot.app import TelegramBot

            telegram = TelegramBot(process)
        runner = start_runner(
            process,
            sink=telegram.relay if telegram is not None else None,
            surfaces=APP_AND_TELEGRAM if telegram is not None else frozenset({"app"}),
        )
        notifier: Notifier | None = None
        if telegram is not None and settings.notify_interval > 0:
            from bot.notifications import Notifier

            notifier = await Notifier.start(telegram.bot, process)
        knowledge_worker: KnowledgeWorker | None = None
        if process.knowledge is not None:
            knowledge_worker = KnowledgeWorker(
                sessionmaker,
                broker,
                process.storage,
                process.knowledge,
                process.billing,
                max_source_bytes=settings.max_upload_bytes,
            )
            # Like reply jobs: AI_RUNNER_ENABLED=false leaves documents to other processes.
            if settings.ai_runner_enabled:
                knowledge_worker.start()
        auth = AuthConfig.from_settings(settings)
        context = cls(
            **process.parts(),
            auth=auth,
            hub=hub,
            limits=AbuseLimits.from_settings(
                settings, create_rate_limiter(settings.redis_target, settings.redis_prefix)
            ),
            runner=runner,
            telegram=telegram,
            bot_mode=bot_mode,
            notifier=notifier,
            knowledge_worker=knowledge_worker,
        )
        # Revocations and user changes, from any process, end what the cache remembers.
        context._stop_listening.append(broker.add_listener(auth.cache.on_envelope))
        if telegram is not None:
            telegram.attach(runner)
            await telegram.start(polling=bot_mode == "polling")
            if bot_mode == "polling":
                context._tasks.append(asyncio.create_task(telegram.run_polling()))
        # Last: a task started before something that fails to start would outlive the context.
        context._tasks.append(
            asyncio.create_task(
                run_media_cleanup_forever(
                    sessionmaker, broker, process.storage, spool_dir=process.media.spool_dir
                )
            )
        )
        return context

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.close()
        if self.telegram is not None:
            await self.telegram.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.runner is not None:
            await self.runner.close()
        if self.knowledge_worker is not None:
            await self.knowledge_worker.close()
        await self.hub.close()
        for stop in self._stop_listening:
            stop()
        await self.limits.limiter.close()
        await Process.close(self)
