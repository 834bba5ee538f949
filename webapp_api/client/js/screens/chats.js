// The chat list: search, unread badges, last message, online dots, typing, new chat.

import { api } from "../api.js";
import * as store from "../store.js";
import { icon } from "../icons.js";
import { h, mount, avatar, chatTitle, userName, formatTime, debounce } from "../ui.js";
import { backButton } from "../telegram.js";

const { state } = store;

export function previewText(message) {
  if (!message) return "No messages yet";
  if (message.is_deleted) return "Message deleted";
  const kinds = { photo: "Photo", voice: "Voice message", audio: "Audio", video: "Video", document: "File", album: "Album" };
  const label = kinds[message.message_type];
  if (label && message.text) return `${label}, ${message.text}`;
  return message.text || label || "Message";
}

function chatRow(chat) {
  const title = chatTitle(chat, state.me);
  const peer = chat.peer;
  const online = chat.chat_type === "private" && peer && state.online.get(peer.id) === true;
  const typingIds = store.typingUsers(chat.id);
  const last = chat.last_message_detail;
  let preview;
  if (typingIds.length) {
    preview = h("span.preview.typing", chat.chat_type === "group" ? `${userName(state.users.get(typingIds[0]))} is typing…` : "typing…");
  } else {
    const mine = last && state.me && last.sender_id === state.me.id;
    const who = last && chat.chat_type === "group" && !last.is_deleted
      ? (mine ? "You" : userName(last.sender)).split(" ")[0] : mine && !last.is_deleted ? "You" : null;
    preview = h("span.preview", who ? h("span.who", `${who}: `) : null, previewText(last));
  }
  const unread = chat.unread_count || 0;
  const label = `${title}${unread ? `, ${unread} unread` : ""}${online ? ", online" : ""}`;
  return h("li", h("button.chat-item", {
    type: "button",
    "data-testid": "chat-item",
    "data-chat-id": chat.id,
    "aria-label": label,
    onclick: () => { location.hash = `#/chat/${chat.id}`; },
  },
  avatar(title, { photo: chat.photo_url || peer?.profile_photo_url, online, ai: chat.chat_type === "ai" }),
  h("span.body",
    h("span.row",
      h("span.name", title, chat.chat_type === "ai" ? h("span.kind-tag", "AI") : null),
      h("span.time", formatTime(chat.last_message_time))),
    h("span.row", preview,
      unread ? h("span.badge", { class: chat.is_muted ? "muted" : "", "data-testid": "unread-badge" }, unread > 999 ? "999+" : String(unread)) : null))));
}

export function renderChats(container) {
  backButton.hide();
  document.getElementById("title").textContent = "Chats";
  mount(document.getElementById("top-actions"),
    h("button.icon-button", { type: "button", "aria-label": "AI assistant", title: "AI assistant", "data-testid": "ai-chat-button", onclick: () => { location.hash = "#/ai"; } }, icon("sparkle")),
    h("button.icon-button", { type: "button", "aria-label": "Assistants", title: "Assistants", "data-testid": "assistants-button", onclick: () => { location.hash = "#/assistants"; } }, icon("assistants")),
    h("button.icon-button", { type: "button", "aria-label": "Balance", "data-testid": "balance-button", onclick: () => { location.hash = "#/balance"; } }, icon("star")),
    h("button.icon-button", { type: "button", "aria-label": "Profile", "data-testid": "profile-button", onclick: () => { location.hash = "#/profile"; } },
      avatar(state.me ? userName(state.me) : "?", { size: 30, photo: state.me?.profile_photo_url })));

  const search = h("input", {
    type: "search", id: "chat-search", placeholder: "Search chats and messages", autocomplete: "off",
    "data-testid": "chat-search", "aria-label": "Search chats and messages",
  });
  const list = h("ul.chat-list", { "data-testid": "chat-list", "aria-label": "Chats" });
  const results = h("div", { "data-testid": "search-results", hidden: true });
  const scroll = h("div.scroll", list, results);
  const fab = h("button.fab", { type: "button", "aria-label": "New chat", "data-testid": "new-chat-button", onclick: () => { location.hash = "#/new"; } }, icon("pencil", 26));
  mount(container, h("div.search-bar", h("label.visually-hidden", { for: "chat-search" }, "Search"), search), scroll, fab);

  const renderList = () => {
    const chats = store.sortedChats();
    if (!chats.length) {
      mount(list, h("li.empty", "No chats yet. Start one with the pencil button, or talk to the AI assistant (✦ at the top)."));
      return;
    }
    mount(list, chats.map(chatRow));
  };

  let searchSeq = 0;
  const runSearch = debounce(async (q) => {
    const mine = ++searchSeq;
    if (!q) {
      results.hidden = true;
      list.hidden = false;
      return;
    }
    try {
      const [chats, messages] = await Promise.all([
        api.get("/chats/search", { q }),
        api.get("/search/messages", { q, limit: 20 }),
      ]);
      if (mine !== searchSeq) return;
      list.hidden = true;
      results.hidden = false;
      mount(results,
        h("h2.section-title", "Chats"),
        chats.length ? h("ul.chat-list", chats.map((c) => { store.upsertChat(c, { silent: true }); return chatRow(state.chats.get(c.id)); })) : h("p.empty", "No chats found"),
        h("h2.section-title", "Messages"),
        messages.length ? messages.map((m) => {
          const chat = state.chats.get(m.chat_id);
          return h("button.search-result", {
            type: "button", "data-testid": "search-message-result", "data-message-id": m.id,
            onclick: () => { location.hash = `#/chat/${m.chat_id}`; },
          }, h("div.meta", `${chat ? chatTitle(chat, state.me) : "Chat"} · ${userName(m.sender)} · ${formatTime(m.created_at)}`), h("div", m.text || ""));
        }) : h("p.empty", "No messages found"));
    } catch (error) {
      if (mine === searchSeq) mount(results, h("p.error-text", error.message));
    }
  }, 250);
  search.addEventListener("input", () => runSearch(search.value.trim()));

  renderList();
  const refresh = () => { if (!search.value.trim()) renderList(); };
  const offs = [store.on("chats", refresh), store.on("presence", refresh)];
  const typingOffs = new Map();
  const watchTyping = () => {
    for (const chat of state.chats.values()) {
      if (!typingOffs.has(chat.id)) typingOffs.set(chat.id, store.on(`typing:${chat.id}`, refresh));
    }
  };
  watchTyping();
  offs.push(store.on("chats", watchTyping));
  return () => {
    offs.forEach((off) => off());
    typingOffs.forEach((off) => off());
  };
}
