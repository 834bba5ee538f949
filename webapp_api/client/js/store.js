// Client state: chats, loaded messages, per-chat seq, read markers, typing, presence, AI streams,
// pending sends. Chat events are applied here, once each, in seq order.

const listeners = new Map();

/** store.on("chat:12", fn) -> unsubscribe. Topics: chats, chat:<id>, messages:<id>, typing:<id>,
 * ai:<id>, presence, connection, balance, me, notice. */
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic)?.delete(fn);
}

export function emit(topic, detail) {
  for (const fn of [...(listeners.get(topic) || [])]) {
    try {
      fn(detail);
    } catch (error) {
      queueMicrotask(() => { throw error; });
    }
  }
}

export const state = {
  me: null,
  chats: new Map(), // id -> chat list item (plus members/my_settings when the details were loaded)
  details: new Map(), // id -> ChatView
  seqs: new Map(), // id -> last applied seq
  messages: new Map(), // chat id -> {byId: Map, hasMore, loaded}
  readMarkers: new Map(), // chat id -> Map(user id -> last_read_seq)
  typing: new Map(), // chat id -> Map(user id -> {until, timer})
  online: new Map(), // user id -> bool
  users: new Map(), // user id -> brief (senders, members, peers)
  ai: new Map(), // reply id -> {reply_id, chat_id, text, model, status}
  pending: new Map(), // client_msg_id -> pending message
  balance: null,
  connection: "connecting",
  activeChatId: null,
};

// -- chats -------------------------------------------------------------------------------------------

export function rememberUser(user) {
  if (user && user.id) state.users.set(user.id, { ...(state.users.get(user.id) || {}), ...user });
}

export function setChats(items) {
  // A listed chat's unread count and last message already count its events up to last_seq:
  // such an event arriving after the list (held back, or late) must not count again.
  for (const item of items) upsertChat({ ...item, listed_seq: item.last_seq }, { silent: true });
  emit("chats");
}

export function upsertChat(item, { silent = false } = {}) {
  const existing = state.chats.get(item.id) || {};
  const chat = { ...existing, ...item };
  state.chats.set(item.id, chat);
  if (item.peer) rememberUser(item.peer);
  if (typeof item.last_seq === "number" && !state.seqs.has(item.id)) state.seqs.set(item.id, item.last_seq);
  if (item.last_message_detail) rememberUser(item.last_message_detail.sender);
  if (!silent) {
    emit("chats");
    emit(`chat:${item.id}`);
  }
  return chat;
}

/** Full chat details (members with read markers). */
export function setDetails(view) {
  state.details.set(view.id, view);
  const markers = markersOf(view.id);
  for (const member of view.members || []) {
    rememberUser(member);
    markers.set(member.id, Math.max(markers.get(member.id) || 0, member.last_read_seq || 0));
  }
  const chat = state.chats.get(view.id);
  const peer = view.chat_type !== "group" && state.me ? (view.members || []).find((m) => m.id !== state.me.id) : null;
  upsertChat({
    id: view.id,
    title: view.title,
    chat_type: view.chat_type,
    photo_url: view.photo_url,
    is_active: view.is_active,
    member_count: (view.members || []).length,
    last_read_seq: view.my_settings ? view.my_settings.last_read_seq : chat?.last_read_seq,
    is_muted: view.my_settings?.is_muted,
    peer: chat?.peer || peer || null,
    unread_count: chat ? chat.unread_count : 0,
    last_message_detail: chat ? chat.last_message_detail : null,
    last_message_time: chat ? chat.last_message_time : view.updated_at,
    last_seq: chat?.last_seq ?? view.last_seq,
  });
  if (!state.seqs.has(view.id)) state.seqs.set(view.id, view.last_seq);
  emit(`chat:${view.id}`);
}

export function removeChat(chatId) {
  state.chats.delete(chatId);
  state.details.delete(chatId);
  state.messages.delete(chatId);
  state.seqs.delete(chatId);
  emit("chats");
  emit(`chat:${chatId}`);
}

export function sortedChats() {
  const time = (c) => Date.parse(c.last_message_time || c.created_at || 0) || 0;
  return [...state.chats.values()].filter((c) => c.is_active !== false).sort((a, b) => time(b) - time(a));
}

function markersOf(chatId) {
  if (!state.readMarkers.has(chatId)) state.readMarkers.set(chatId, new Map());
  return state.readMarkers.get(chatId);
}

// -- messages ----------------------------------------------------------------------------------------

export function messagesOf(chatId) {
  if (!state.messages.has(chatId)) state.messages.set(chatId, { byId: new Map(), hasMore: true, loaded: false });
  return state.messages.get(chatId);
}

function isNewer(candidate, existing) {
  if (!existing) return true;
  if (candidate.is_deleted !== existing.is_deleted) return candidate.is_deleted;
  return Date.parse(candidate.updated_at || 0) >= Date.parse(existing.updated_at || 0);
}

/** Add or refresh messages (from history pages, REST answers or events); returns the changed ids. */
export function upsertMessages(chatId, list, { fromEvent = false } = {}) {
  const box = messagesOf(chatId);
  const changed = [];
  for (const message of list) {
    rememberUser(message.sender);
    const existing = box.byId.get(message.id);
    if (!fromEvent && !isNewer(message, existing)) continue;
    box.byId.set(message.id, existing ? { ...existing, ...message } : message);
    changed.push(message.id);
    if (message.client_msg_id && state.pending.has(message.client_msg_id)) {
      const pending = state.pending.get(message.client_msg_id);
      if (pending.chat_id === chatId) state.pending.delete(message.client_msg_id);
    }
  }
  if (changed.length) emit(`messages:${chatId}`, { ids: changed });
  return changed;
}

export function orderedMessages(chatId) {
  const box = messagesOf(chatId);
  return [...box.byId.values()].sort((a, b) => a.seq - b.seq || a.id - b.id);
}

export function pendingOf(chatId) {
  return [...state.pending.values()].filter((p) => p.chat_id === chatId);
}

/** "pending", "failed", "sent" or "read" for one of my messages. */
/** The emoji this user reacted to the message with, or null (reactions list who gave them). */
export function myReaction(message) {
  const id = state.me && state.me.id;
  const mine = (message.reactions || []).find((r) => (r.user_ids || []).includes(id));
  return mine ? mine.emoji : null;
}

export function readState(message) {
  if (message.pending) return message.failed ? "failed" : "pending";
  if (message.read_by && message.read_by.some((id) => id !== message.sender_id)) return "read";
  const markers = state.readMarkers.get(message.chat_id);
  if (markers) {
    for (const [userId, seq] of markers) {
      if (userId !== message.sender_id && seq >= message.seq) return "read";
    }
  }
  return "sent";
}

// -- pending sends -------------------------------------------------------------------------------------

export function addPending(pending) {
  state.pending.set(pending.client_msg_id, { pending: true, failed: false, ...pending });
  emit(`messages:${pending.chat_id}`, { pending: pending.client_msg_id });
}

export function updatePending(clientMsgId, changes) {
  const pending = state.pending.get(clientMsgId);
  if (!pending) return;
  Object.assign(pending, changes);
  emit(`messages:${pending.chat_id}`, { pending: clientMsgId });
}

export function dropPending(clientMsgId) {
  const pending = state.pending.get(clientMsgId);
  if (!pending) return;
  state.pending.delete(clientMsgId);
  emit(`messages:${pending.chat_id}`, { pending: clientMsgId });
}

// -- chat events -------------------------------------------------------------------------------------

/**
 * Apply one chat event. Returns "applied", "duplicate", "gap" (seq jumped: the caller fetches the
 * missing events first) or "unknown_chat".
 */
export function applyEvent(event, { force = false } = {}) {
  const chatId = event.chat_id;
  if (!state.chats.has(chatId)) return "unknown_chat";
  const last = state.seqs.get(chatId);
  if (typeof last === "number" && event.seq <= last) return "duplicate";
  if (!force && typeof last === "number" && event.seq > last + 1) return "gap";
  state.seqs.set(chatId, event.seq);
  const chat = state.chats.get(chatId);
  chat.last_seq = Math.max(chat.last_seq || 0, event.seq);
  const handler = HANDLERS[event.type];
  if (handler) handler(event, chat);
  return "applied";
}

function updateLoaded(chatId, messageId, changes) {
  const box = state.messages.get(chatId);
  const message = box && box.byId.get(messageId);
  if (message) {
    Object.assign(message, changes);
    emit(`messages:${chatId}`, { ids: [messageId] });
  }
  const chat = state.chats.get(chatId);
  if (chat && chat.last_message_detail && chat.last_message_detail.id === messageId) {
    chat.last_message_detail = { ...chat.last_message_detail, ...changes };
    emit("chats");
  }
}

const HANDLERS = {
  new_message(event, chat) {
    const message = event.message;
    const mine = state.me && message.sender_id === state.me.id;
    if (state.messages.has(chat.id)) upsertMessages(chat.id, [message], { fromEvent: true });
    else if (message.client_msg_id) state.pending.delete(message.client_msg_id);
    for (const reply of state.ai.values()) {
      if (reply.chat_id === chat.id && (reply.message_ids || []).includes(message.id)) removeAi(reply.reply_id);
    }
    const listed = typeof chat.listed_seq === "number" && event.seq <= chat.listed_seq;
    if (!listed) {
      chat.last_message_detail = message;
      chat.last_message_time = message.created_at;
    }
    if (!listed && !mine && !(state.activeChatId === chat.id && document.visibilityState === "visible")) {
      chat.unread_count = (chat.unread_count || 0) + 1;
    }
    if (mine) chat.unread_count = 0;
    clearTyping(chat.id, message.sender_id);
    rememberUser(message.sender);
    emit("chats");
    emit(`chat:${chat.id}`);
    emit("notice", { type: "new_message", chat, message, mine });
  },
  message_edited(event, chat) {
    const box = state.messages.get(chat.id);
    if (box && box.byId.has(event.message.id)) upsertMessages(chat.id, [event.message], { fromEvent: true });
    if (chat.last_message_detail && chat.last_message_detail.id === event.message.id) {
      chat.last_message_detail = event.message;
      emit("chats");
    }
  },
  message_transcribed(event, chat) {
    updateLoaded(chat.id, event.message_id, { transcript: event.transcript });
  },
  message_deleted(event, chat) {
    updateLoaded(chat.id, event.message_id, { is_deleted: true, text: null, transcript: null, media: [], media_url: null, reactions: [], is_pinned: false });
  },
  reaction_changed(event, chat) {
    updateLoaded(chat.id, event.message_id, { reactions: event.reactions || [] });
  },
  message_pinned(event, chat) {
    updateLoaded(chat.id, event.message_id, { is_pinned: event.is_pinned });
  },
  message_read(event, chat) {
    const markers = markersOf(chat.id);
    markers.set(event.user_id, Math.max(markers.get(event.user_id) || 0, event.last_read_seq || 0));
    if (state.me && event.user_id === state.me.id) {
      chat.last_read_seq = Math.max(chat.last_read_seq || 0, event.last_read_seq || 0);
      chat.unread_count = countUnread(chat);
      emit("chats");
    }
    emit(`messages:${chat.id}`, { reads: true });
    emit(`chat:${chat.id}`);
  },
  member_added(event, chat) {
    rememberUser(event.user);
    const view = state.details.get(chat.id);
    if (view && !view.members.some((m) => m.id === event.user_id)) {
      view.members.push({ ...event.user, role: event.role, is_admin: event.role !== "member", last_read_seq: 0 });
    }
    chat.member_count = (chat.member_count || 0) + 1;
    emit(`chat:${chat.id}`);
  },
  member_removed(event, chat) {
    if (state.me && event.user_id === state.me.id) {
      removeChat(chat.id);
      return;
    }
    const view = state.details.get(chat.id);
    if (view) view.members = view.members.filter((m) => m.id !== event.user_id);
    chat.member_count = Math.max(0, (chat.member_count || 1) - 1);
    emit(`chat:${chat.id}`);
  },
  member_updated(event, chat) {
    const view = state.details.get(chat.id);
    const member = view && view.members.find((m) => m.id === event.user_id);
    if (member) {
      member.role = event.role;
      member.is_admin = event.role !== "member";
    }
    emit(`chat:${chat.id}`);
  },
  chat_updated(event, chat) {
    Object.assign(chat, event.chat);
    const view = state.details.get(chat.id);
    if (view) Object.assign(view, event.chat);
    if (event.chat && event.chat.is_active === false) {
      removeChat(chat.id);
      return;
    }
    emit("chats");
    emit(`chat:${chat.id}`);
  },
  chat_deleted(event, chat) {
    removeChat(chat.id);
  },
};

/** Unread messages of others past my marker, from what is loaded (the server's count otherwise). */
function countUnread(chat) {
  if (chat.last_read_seq >= chat.last_seq) return 0;
  const box = state.messages.get(chat.id);
  if (!box || !box.loaded) return chat.unread_count || 0;
  let count = 0;
  for (const m of box.byId.values()) {
    if (m.seq > chat.last_read_seq && m.sender_id !== state.me?.id && !m.is_deleted) count++;
  }
  return count;
}

// -- ephemeral state ----------------------------------------------------------------------------------

export function setTyping(chatId, userId, isTyping, expiresIn) {
  if (!state.typing.has(chatId)) state.typing.set(chatId, new Map());
  const typing = state.typing.get(chatId);
  const previous = typing.get(userId);
  if (previous) clearTimeout(previous.timer);
  if (isTyping) {
    const ms = Math.max(1, expiresIn || 6) * 1000;
    typing.set(userId, { until: Date.now() + ms, timer: setTimeout(() => clearTyping(chatId, userId), ms) });
  } else {
    typing.delete(userId);
  }
  emit(`typing:${chatId}`);
}

export function clearTyping(chatId, userId) {
  const typing = state.typing.get(chatId);
  if (!typing || !typing.has(userId)) return;
  clearTimeout(typing.get(userId).timer);
  typing.delete(userId);
  emit(`typing:${chatId}`);
}

export function typingUsers(chatId) {
  return [...(state.typing.get(chatId) || new Map()).keys()];
}

export function setOnline(userId, isOnline) {
  state.online.set(userId, isOnline);
  emit("presence", { userId });
}

export function setConnection(value) {
  state.connection = value;
  emit("connection", value);
}

export function setBalance(balance) {
  state.balance = { ...(state.balance || {}), ...balance };
  emit("balance");
}

export function setMe(me) {
  state.me = me;
  rememberUser(me);
  emit("me");
}

/** Resume frame for the socket: the last seq of every chat we know. */
export function resumeFrame() {
  const chats = {};
  for (const [chatId, seq] of state.seqs) if (state.chats.has(chatId)) chats[chatId] = seq;
  return { type: "resume", chats };
}

// -- AI replies ------------------------------------------------------------------------------------

/** Replies shown as a live bubble: streaming, or done but their message not here yet. */
export function aiStreamsOf(chatId) {
  return [...state.ai.values()].filter((r) => r.chat_id === chatId);
}

export function upsertAi(replyId, changes) {
  const current = state.ai.get(replyId) || { reply_id: replyId, text: "", status: "streaming" };
  const next = { ...current, ...changes };
  state.ai.set(replyId, next);
  emit(`ai:${next.chat_id}`, { replyId });
  return next;
}

export function removeAi(replyId) {
  const reply = state.ai.get(replyId);
  if (!reply) return;
  state.ai.delete(replyId);
  emit(`ai:${reply.chat_id}`, { replyId, removed: true });
}
