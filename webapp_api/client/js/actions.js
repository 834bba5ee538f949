// What the screens ask for: loading, sending (idempotent, with pending state), reading, typing,
// and the socket's frames applied to the store (gap filling, AI streams, acks).

import { api, ApiError } from "./api.js";
import * as store from "./store.js";
import { toast, announce, userName } from "./ui.js";
import { haptics } from "./telegram.js";

const { state } = store;
let socket = null;

export function attachSocket(s) {
  socket = s;
}

// -- loading -----------------------------------------------------------------------------------------

export async function loadMe() {
  store.setMe(await api.get("/me"));
}

export async function loadChats() {
  const items = await api.get("/chats", { limit: 200 });
  const seen = new Set(items.map((c) => c.id));
  for (const id of [...state.chats.keys()]) if (!seen.has(id)) state.chats.delete(id);
  store.setChats(items);
  return items;
}

/** Who of a chat's members is online now (presence frames only tell changes). */
export async function loadOnline(chatId) {
  const found = await api.get(`/chats/${chatId}/online`);
  const online = new Set(found.user_ids);
  const members = state.details.get(chatId)?.members.map((m) => m.id) || [];
  const peer = state.chats.get(chatId)?.peer;
  for (const id of new Set([...members, ...(peer ? [peer.id] : []), ...online])) {
    if (id !== state.me?.id && state.online.get(id) !== online.has(id)) store.setOnline(id, online.has(id));
  }
}

const ONLINE_SNAPSHOT_CHATS = 15;

/** After (re)connecting: the presence of the people of my most recent private chats. */
async function snapshotPresence() {
  const chats = store.sortedChats().filter((c) => c.chat_type === "private").slice(0, ONLINE_SNAPSHOT_CHATS);
  for (let i = 0; i < chats.length; i += 4) {
    await Promise.all(chats.slice(i, i + 4).map((c) => loadOnline(c.id).catch(() => null)));
  }
}

export async function loadChatDetails(chatId) {
  const view = await api.get(`/chats/${chatId}`);
  store.setDetails(view);
  return view;
}

const HISTORY_PAGE = 40;

export async function loadLatest(chatId) {
  const box = store.messagesOf(chatId);
  const page = await api.get(`/chats/${chatId}/messages`, { limit: HISTORY_PAGE });
  box.loaded = true;
  box.hasMore = page.has_more;
  store.upsertMessages(chatId, page.messages);
  return page;
}

const loadingOlder = new Set();

/** The page before the oldest loaded message (infinite scroll upwards); false when there is none. */
export async function loadOlder(chatId) {
  const box = store.messagesOf(chatId);
  if (!box.hasMore || loadingOlder.has(chatId)) return false;
  const oldest = store.orderedMessages(chatId)[0];
  if (!oldest) return false;
  loadingOlder.add(chatId);
  try {
    const page = await api.get(`/chats/${chatId}/messages`, { before_id: oldest.id, limit: HISTORY_PAGE });
    box.hasMore = page.has_more;
    store.upsertMessages(chatId, page.messages);
    return page.messages.length > 0;
  } finally {
    loadingOlder.delete(chatId);
  }
}

// -- sending -----------------------------------------------------------------------------------------

const ACK_TIMEOUT_MS = 8000;
const wsSends = new Map(); // client_msg_id -> ack timer
const RETRY_DELAYS = [1000, 2000, 4000, 8000, 15000];

function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Send a message: shown at once as pending, then confirmed by the ack (WebSocket) or the 201
 * (REST). The same client_msg_id on every retry: the server keeps one message.
 * `media`: [{id, kind, url, mime_type}] already uploaded.
 */
export function sendMessage(chatId, { text = "", replyTo = null, media = [] } = {}) {
  const pending = {
    client_msg_id: newClientMsgId(),
    chat_id: chatId,
    text: text || null,
    reply_to_message_id: replyTo,
    media,
    sender_id: state.me.id,
    sender: state.me,
    created_at: new Date().toISOString(),
    attempts: 0,
  };
  store.addPending(pending);
  haptics.impact("light");
  sendPending(pending);
  return pending.client_msg_id;
}

function sendPending(pending) {
  if (!state.pending.has(pending.client_msg_id)) return;
  const textOnly = !pending.media.length;
  if (textOnly && socket && socket.online) {
    const frame = {
      type: "send_message",
      chat_id: pending.chat_id,
      text: pending.text || "",
      client_msg_id: pending.client_msg_id,
    };
    if (pending.reply_to_message_id) frame.reply_to_message_id = pending.reply_to_message_id;
    if (socket.send(frame)) {
      clearTimeout(wsSends.get(pending.client_msg_id));
      wsSends.set(pending.client_msg_id, setTimeout(() => {
        wsSends.delete(pending.client_msg_id);
        sendOverRest(pending); // no ack in time: the same id over REST answers the same message
      }, ACK_TIMEOUT_MS));
      return;
    }
  }
  sendOverRest(pending);
}

async function sendOverRest(pending) {
  if (!state.pending.has(pending.client_msg_id) || pending.inFlight) return;
  pending.inFlight = true;
  try {
    const body = { text: pending.text, client_msg_id: pending.client_msg_id };
    if (pending.reply_to_message_id) body.reply_to_message_id = pending.reply_to_message_id;
    if (pending.media.length) body.media_ids = pending.media.map((m) => m.id);
    const message = await api.post(`/chats/${pending.chat_id}/messages`, body);
    confirmSent(pending.chat_id, message);
  } catch (error) {
    if (error instanceof ApiError && error.status === 0 && pending.attempts < RETRY_DELAYS.length) {
      const delay = RETRY_DELAYS[pending.attempts++];
      setTimeout(() => sendPending(pending), delay);
    } else {
      failPending(pending.client_msg_id, error.message);
    }
  } finally {
    pending.inFlight = false;
  }
}

function confirmSent(chatId, message) {
  clearTimeout(wsSends.get(message.client_msg_id));
  wsSends.delete(message.client_msg_id);
  store.upsertMessages(chatId, [message]);
  store.dropPending(message.client_msg_id);
  const chat = state.chats.get(chatId);
  if (chat && (!chat.last_message_detail || chat.last_message_detail.seq <= message.seq)) {
    chat.last_message_detail = message;
    chat.last_message_time = message.created_at;
    store.emit("chats");
  }
}

function failPending(clientMsgId, reason) {
  clearTimeout(wsSends.get(clientMsgId));
  wsSends.delete(clientMsgId);
  store.updatePending(clientMsgId, { failed: true, error: reason });
  haptics.error();
  toast(reason || "Message not sent", "error");
}

export function retryPending(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending) return;
  pending.attempts = 0;
  store.updatePending(clientMsgId, { failed: false, error: null });
  sendPending(pending);
}

export function discardPending(clientMsgId) {
  store.dropPending(clientMsgId);
}

/** After a reconnect: pending sends that never got an answer go again, with their own ids. */
function resendUnacked() {
  for (const pending of state.pending.values()) {
    if (pending.failed || pending.inFlight) continue;
    clearTimeout(wsSends.get(pending.client_msg_id));
    wsSends.delete(pending.client_msg_id);
    sendPending(pending);
  }
}

/** Upload a file (photo, voice, ...) and send it; the pending bubble shows a local preview. */
export async function sendMedia(chatId, file, kind, { text = "", replyTo = null, duration = null } = {}) {
  const localUrl = URL.createObjectURL(file);
  const pending = {
    client_msg_id: newClientMsgId(),
    chat_id: chatId,
    text: text || null,
    reply_to_message_id: replyTo,
    media: [],
    preview: { kind, url: localUrl, mime_type: file.type, duration },
    sender_id: state.me.id,
    sender: state.me,
    created_at: new Date().toISOString(),
    attempts: 0,
    uploading: true,
  };
  store.addPending(pending);
  try {
    const uploaded = await api.upload(file, kind, file.name || (kind === "voice" ? "voice.webm" : "photo.jpg"));
    pending.media = [uploaded];
    pending.uploading = false;
    store.updatePending(pending.client_msg_id, {});
    await sendOverRest(pending);
  } catch (error) {
    failPending(pending.client_msg_id, error.message || "Upload failed");
  }
}

// -- editing, deleting, reactions -------------------------------------------------------------------------

export async function editMessage(message, text) {
  const updated = await api.patch(`/messages/${message.id}`, { text });
  store.upsertMessages(message.chat_id, [updated]);
}

export async function deleteMessage(message) {
  const updated = await api.del(`/messages/${message.id}`);
  store.upsertMessages(message.chat_id, [updated]);
}

export async function toggleReaction(message, emoji) {
  const updated = store.myReaction(message) === emoji
    ? await api.del(`/messages/${message.id}/reaction`)
    : await api.put(`/messages/${message.id}/reaction`, { emoji });
  haptics.selection();
  store.upsertMessages(message.chat_id, [updated]);
}

/** Ask for a voice note's words: already there (the message), or on their way (202: the
 * `message_transcribed` event brings them to every member). */
export async function transcribe(message) {
  const answer = await api.post(`/chats/${message.chat_id}/messages/${message.id}/transcribe`);
  if (answer && answer.message_type) store.upsertMessages(message.chat_id, [answer]);
}

// -- reading and typing ---------------------------------------------------------------------------------

const readSent = new Map(); // chat id -> message id last reported

/** Report the newest message of the open chat as read (when the page is visible). */
export function markRead(chatId) {
  if (document.visibilityState !== "visible") return;
  const chat = state.chats.get(chatId);
  const messages = store.orderedMessages(chatId);
  const newest = messages[messages.length - 1];
  if (!chat || !newest) return;
  if ((chat.last_read_seq || 0) >= newest.seq && !chat.unread_count) return;
  if (readSent.get(chatId) === newest.id) return;
  readSent.set(chatId, newest.id);
  chat.unread_count = 0;
  chat.last_read_seq = Math.max(chat.last_read_seq || 0, newest.seq);
  store.emit("chats");
  if (!(socket && socket.send({ type: "read", chat_id: chatId, message_id: newest.id }))) {
    api.post(`/chats/${chatId}/read`, { message_id: newest.id }).catch(() => readSent.delete(chatId));
  }
}

const TYPING_REPEAT_MS = 2500;
const TYPING_IDLE_MS = 4000;
const typingState = new Map(); // chat id -> {sentAt, idleTimer}

/** Call on every keystroke in the composer; frames go at most every 2.5 s, and stop when idle. */
export function userTyping(chatId) {
  const current = typingState.get(chatId) || { sentAt: 0, idleTimer: null };
  const now = Date.now();
  if (now - current.sentAt > TYPING_REPEAT_MS) {
    if (socket && socket.send({ type: "typing", chat_id: chatId, is_typing: true })) current.sentAt = now;
  }
  clearTimeout(current.idleTimer);
  current.idleTimer = setTimeout(() => stopTyping(chatId), TYPING_IDLE_MS);
  typingState.set(chatId, current);
}

export function stopTyping(chatId) {
  const current = typingState.get(chatId);
  if (!current) return;
  clearTimeout(current.idleTimer);
  typingState.delete(chatId);
  if (current.sentAt) socket?.send({ type: "typing", chat_id: chatId, is_typing: false });
}

// -- AI -------------------------------------------------------------------------------------------------

/** Stop a reply: its partial text stays as an incomplete message (done + new_message follow). */
export async function cancelAiReply(replyId) {
  haptics.impact("medium");
  if (state.ai.has(replyId)) store.upsertAi(replyId, { stopping: true });
  try {
    return await api.post(`/ai/replies/${replyId}/cancel`);
  } catch (error) {
    if (state.ai.has(replyId)) store.upsertAi(replyId, { stopping: false });
    throw error;
  }
}

async function catchUpAi(replyId) {
  try {
    const reply = await api.get(`/ai/replies/${replyId}`);
    const live = state.ai.get(replyId);
    if (live && live.status === "streaming" && reply.text.length >= live.text.length) {
      store.upsertAi(replyId, { text: reply.text, model: reply.model });
    }
  } catch {
    /* the reply ends with done/failed anyway */
  }
}

// -- socket frames -------------------------------------------------------------------------------------

const filling = new Map(); // chat id -> queued events while the gap is fetched

async function fillGap(chatId, initial = []) {
  const queue = [...initial];
  filling.set(chatId, queue);
  try {
    let more = true;
    while (more && state.chats.has(chatId)) {
      const after = state.seqs.get(chatId) || 0;
      const page = await api.get(`/chats/${chatId}/events`, { after_seq: after, limit: 200 });
      for (const event of page.events) store.applyEvent(event, { force: true });
      more = page.has_more && page.events.length > 0;
    }
  } catch {
    /* the next reconnect resumes from our seq */
  } finally {
    filling.delete(chatId);
  }
  queue.sort((a, b) => a.seq - b.seq);
  for (const event of queue) applyChatEvent(event);
}

const discovering = new Map();

async function discoverChat(chatId, event) {
  if (!discovering.has(chatId)) {
    discovering.set(chatId, loadChats().catch(() => null).finally(() => discovering.delete(chatId)));
  }
  await discovering.get(chatId);
  if (state.chats.has(chatId)) applyChatEvent(event);
}

function applyChatEvent(event) {
  const queue = filling.get(event.chat_id);
  if (queue) {
    queue.push(event);
    return;
  }
  const result = store.applyEvent(event);
  if (result === "gap") {
    fillGap(event.chat_id, [event]);
  } else if (result === "unknown_chat") {
    discoverChat(event.chat_id, event);
  }
}

export function handleFrame(frame) {
  if (typeof frame.seq === "number" && typeof frame.chat_id === "number" && frame.type !== "ack") {
    applyChatEvent(frame);
    return;
  }
  switch (frame.type) {
    case "resumed":
      resendUnacked();
      // Chats I joined while no socket listened (also between the first list and this socket)
      // sent me nothing: the list, loaded once the socket is live, has them.
      loadChats().then(snapshotPresence).catch(() => null);
      break;
    case "ack": {
      clearTimeout(wsSends.get(frame.client_msg_id));
      wsSends.delete(frame.client_msg_id);
      const pending = state.pending.get(frame.client_msg_id);
      if (pending) {
        pending.message_id = frame.message_id;
        const box = state.messages.get(frame.chat_id);
        if (box && box.byId.has(frame.message_id)) store.dropPending(frame.client_msg_id);
        else store.updatePending(frame.client_msg_id, { acked: true });
      }
      break;
    }
    case "error":
      if (frame.client_msg_id && state.pending.has(frame.client_msg_id)) failPending(frame.client_msg_id, frame.message);
      break;
    case "typing":
      if (!state.me || frame.user_id !== state.me.id) store.setTyping(frame.chat_id, frame.user_id, frame.is_typing, frame.expires_in);
      break;
    case "user_status":
      store.setOnline(frame.user_id, frame.is_online);
      break;
    case "balance_changed":
      store.setBalance({ balance: frame.balance, available: frame.available, currency: frame.currency });
      break;
    case "ai_reply_started":
      store.upsertAi(frame.reply_id, {
        chat_id: frame.chat_id, model: frame.model, reply_to_message_id: frame.reply_to_message_id, status: "streaming",
      });
      announce("The AI is replying");
      break;
    case "ai_reply_delta": {
      const live = state.ai.get(frame.reply_id) || store.upsertAi(frame.reply_id, { chat_id: frame.chat_id, status: "streaming" });
      if (frame.offset <= live.text.length) {
        store.upsertAi(frame.reply_id, { text: live.text.slice(0, frame.offset) + frame.text });
      } else {
        catchUpAi(frame.reply_id);
      }
      break;
    }
    case "ai_reply_tool":
      if (state.ai.has(frame.reply_id)) store.upsertAi(frame.reply_id, { tool: frame.status === "started" ? frame.tool : null });
      break;
    case "ai_reply_done": {
      const live = state.ai.get(frame.reply_id);
      const ids = frame.message_ids || (frame.message_id ? [frame.message_id] : []);
      const box = state.messages.get(frame.chat_id);
      if (!live || ids.every((id) => box && box.byId.has(id)) || !ids.length) store.removeAi(frame.reply_id);
      else {
        store.upsertAi(frame.reply_id, { status: "done", message_ids: ids });
        setTimeout(() => store.removeAi(frame.reply_id), 5000);
      }
      break;
    }
    case "knowledge_progress":
      store.emit("knowledge", frame);
      break;
    case "ai_voice_failed":
      toast(`AI voice reply: ${frame.message || frame.code}`, "error");
      break;
    case "ai_reply_failed":
      if (frame.reply_id !== null && frame.reply_id !== undefined) store.removeAi(frame.reply_id);
      if (frame.code !== "cancelled") toast(`AI: ${frame.message || frame.code}`, "error");
      break;
    default:
      break;
  }
}

/** New messages from others: a polite announcement for screen readers. */
store.on("notice", ({ type, message, mine, chat }) => {
  if (type !== "new_message" || mine) return;
  const who = userName(message.sender);
  if (state.activeChatId === chat.id) announce(`${who}: ${message.text || message.message_type}`);
});
