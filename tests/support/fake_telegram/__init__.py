"""A fake Telegram Bot API server: the methods our bot calls, in the real wire format
(`POST {base}/bot{token}/{method}` with form-data, urlencoded, JSON or query parameters;
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": ...}` with the
HTTP status of the error), served by a real uvicorn on a loopback port so that aiogram's `Bot`
talks to it unpatched through `AiohttpSession(api=TelegramAPIServer.from_base(base_url))`.

Several bots can be served at once (`FakeTelegram.add_bot`: an assistant's own bot with its
own getMe, calls, chats, updates, webhook and files); a token no bot has is refused with 401,
as Telegram does. Every call is recorded. Tests push updates (the module's builders make them
in the real format) that getUpdates delivers as a long poll, plan failures (a 429 with
retry_after, a 403, ...) and read the messages the bot sent, as edited. One server runs for the
session; the `fake_telegram` fixture gives each test a fresh FakeTelegram: its own calls,
updates, plans and chat state.

Deliberate simplifications, all lenient: ids the fake never saw (a callback query, a
pre-checkout query, a charge, a chat a message is sent to, a message replied to) are accepted,
since a test may feed an update straight to the Dispatcher; Markdown parse modes are not
parsed; entities are not detected in the bot's own texts. Strict where Telegram is: HTML
(ported from tdlib's parser, with its error texts), message length, empty texts, "message is
not modified", edits of unknown messages, double answers and refunds, getChat of unknown chats.

Modules: `wire` (parameters and errors as Telegram reads and answers them), `entities` (what
Telegram finds and parses in a text), `updates` (test users, chats and update builders),
`state` (what Telegram knows for one test), `methods` (each Bot API method on that state),
`fake` (FakeTelegram: the test's side, planned failures, the long poll and serving), `server`
(the session's server and the pytest fixtures; a plugin of tests/conftest.py).
"""
