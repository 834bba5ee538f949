// A conversation: history with upward infinite scroll, sending (pending until confirmed), replies,
// edits, deletes, reactions, read ticks, typing, photos and voice, and the AI's streaming reply.

import { api } from "../api.js";
import * as store from "../store.js";
import { icon } from "../icons.js";
import * as actions from "../actions.js";
import { h, mount, avatar, chatTitle, userName, formatClock, formatDay, formatDuration, sheet, toast, copyText } from "../ui.js";
import { backButton, haptics } from "../telegram.js";
import { previewText } from "./chats.js";
import { markdownElement, renderMarkdownThrottled } from "../markdown.js";
import { ratingButtons } from "./assistants.js";

const { state } = store;
const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🔥", "🎉"];
const finepointer = window.matchMedia("(pointer: fine)").matches;

function mediaKindOf(file) {
  if (file.type.startsWith("image/")) return "photo";
  if (file.type.startsWith("audio/")) return "audio";
  if (file.type.startsWith("video/")) return "video";
  return "document";
}

function renderMedia(items) {
  return items.map((item) => {
    const kind = item.kind;
    if (kind === "photo") {
      return h("img.photo", { "data-media-id": item.id, src: item.thumbnail_url && item.size > 400000 ? item.thumbnail_url : item.url, alt: "Photo", loading: "lazy", "data-testid": "message-photo", width: item.width || undefined, height: item.height || undefined });
    }
    if (kind === "voice" || kind === "audio") return audioPlayer(item);
    if (kind === "video") return h("video", { "data-media-id": item.id, src: item.url, controls: true, preload: "metadata", "data-testid": "message-video" });
    return h("a.file", { href: item.url, target: "_blank", rel: "noopener", download: item.filename || "" }, icon("file", 18), item.filename || "File");
  });
}

/** A voice note or audio file with its length. A browser's recording (WebM from MediaRecorder)
 * does not say how long it is: the player reads to the end once to learn it, then rewinds. */
function audioPlayer(item) {
  const voice = item.kind === "voice";
  const known = Number.isFinite(item.duration) && item.duration > 0;
  const length = h("span.audio-duration", { "data-testid": "audio-duration" }, known ? formatDuration(item.duration) : "");
  const audio = h("audio", {
    src: item.url, controls: true, preload: "metadata",
    "data-testid": voice ? "message-voice" : "message-audio",
    "aria-label": voice ? `Voice message${known ? ` ${formatDuration(item.duration)}` : ""}` : "Audio",
  });
  let probing = false;
  const showLength = () => {
    if (!Number.isFinite(audio.duration) || audio.duration <= 0) return false;
    length.textContent = formatDuration(audio.duration);
    if (voice) audio.setAttribute("aria-label", `Voice message ${formatDuration(audio.duration)}`);
    return true;
  };
  audio.addEventListener("loadedmetadata", () => {
    if (showLength() || known || probing) return;
    probing = true;
    audio.currentTime = Number.MAX_SAFE_INTEGER; // past the end: the browser finds the real length
  });
  audio.addEventListener("durationchange", () => {
    if (!showLength() || !probing) return;
    probing = false;
    audio.currentTime = 0;
  });
  return h("div.file", { "data-media-id": item.id }, audio, length);
}

/** A message rebuilt (a read tick, a reaction, an edit) keeps its media elements as they are:
 * a voice note being played goes on playing, a photo does not load again. */
function keepMedia(previous, fresh) {
  for (const node of fresh.querySelectorAll("[data-media-id]")) {
    const kept = previous.querySelector(`[data-media-id="${CSS.escape(node.dataset.mediaId)}"]`);
    if (kept) node.replaceWith(kept);
  }
}

export function renderConversation(container, { params, navigate }) {
  const chatId = Number(params[0]);
  state.activeChatId = chatId;
  backButton.show(() => navigate("/chats"));
  const titleEl = document.getElementById("title");
  const subtitleEl = document.getElementById("subtitle");
  mount(document.getElementById("top-actions"),
    h("button.icon-button", { type: "button", "aria-label": "Chat info", "data-testid": "chat-info-button", onclick: () => navigate(`/chat/${chatId}/info`) }, icon("info")));

  const box = store.messagesOf(chatId);
  const loader = h("div.loader", { "data-testid": "history-loader", hidden: true }, "Loading earlier messages…");
  const list = h("div.messages", { role: "log", "aria-live": "polite", "aria-label": "Messages", "data-testid": "message-list", style: { overflowAnchor: "none" } }, loader);
  const typingEl = h("div.typing", { "data-testid": "typing-indicator", "aria-live": "polite" });
  const contextBar = h("div.context-bar", { hidden: true });
  const input = h("textarea", {
    id: "composer-input", rows: 1, placeholder: "Message", "data-testid": "composer-input",
    "aria-label": "Message", maxlength: 8192, enterkeyhint: "send",
  });
  const fileInput = h("input", { type: "file", accept: "image/*,audio/*,video/*,application/pdf", "data-testid": "attach-input", hidden: true, "aria-label": "Attach a file" });
  const attachButton = h("button.icon-button", { type: "button", "aria-label": "Attach a photo or file", "data-testid": "attach-button", onclick: () => fileInput.click() }, icon("attach"));
  // "/image <prompt>": the AI draws it (the composer's text becomes the prompt).
  const imageButton = h("button.icon-button", { type: "button", "aria-label": "Ask the AI to draw a picture", "data-testid": "image-button", hidden: true }, icon("image"));
  const voiceButton = h("button.icon-button.voice-button", { type: "button", "aria-label": "Record a voice message", "data-testid": "voice-button", "data-state": "idle" }, icon("mic"));
  const sendButton = h("button.icon-button.send-button", { type: "button", "aria-label": "Send", "data-testid": "send-button", disabled: true }, icon("send"));
  const recordingEl = h("div.recording", { hidden: true, "data-testid": "voice-recording", role: "status" });
  const cancelRecording = h("button.icon-button", { type: "button", hidden: true, "aria-label": "Cancel recording", "data-testid": "voice-cancel" }, icon("close"));
  const composer = h("div.composer", attachButton, fileInput, imageButton, h("label.visually-hidden", { for: "composer-input" }, "Message"), input, recordingEl, cancelRecording, voiceButton, sendButton);
  const wrap = h("div.conversation", { "data-testid": "conversation", "data-chat-id": chatId }, list, typingEl, h("div.composer-wrap", contextBar, composer));
  mount(container, wrap);

  let replyTo = null; // message being answered
  let editing = null; // message being edited
  const nodes = new Map(); // key -> element
  let disposed = false;

  // -- header ----------------------------------------------------------------------------------------

  function typingText() {
    const ids = store.typingUsers(chatId);
    if (!ids.length) return "";
    const names = ids.map((id) => userName(state.users.get(id)).split(" ")[0]);
    if (names.length === 1) return `${names[0]} is typing…`;
    if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
    return `${names.length} people are typing…`;
  }

  function renderHeader() {
    const chat = state.chats.get(chatId);
    if (!chat) return;
    titleEl.textContent = chatTitle(chat, state.me);
    const typing = typingText();
    typingEl.textContent = typing;
    typingEl.dataset.active = typing ? "true" : "false";
    subtitleEl.classList.toggle("active", Boolean(typing));
    if (state.connection !== "online") subtitleEl.textContent = state.connection === "connecting" ? "connecting…" : "waiting for network…";
    else if (typing) subtitleEl.textContent = chat.chat_type === "private" ? "typing…" : typing;
    else if (chat.chat_type === "ai") subtitleEl.textContent = "AI assistant";
    else if (chat.chat_type === "group") subtitleEl.textContent = `${chat.member_count || state.details.get(chatId)?.members.length || 0} members`;
    else if (chat.peer) subtitleEl.textContent = state.online.get(chat.peer.id) ? "online" : "last seen recently";
    else subtitleEl.textContent = "";
  }

  // -- messages ----------------------------------------------------------------------------------------

  function isNearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
  }

  function quoteOf(message) {
    if (!message.reply_to_message_id) return null;
    const target = box.byId.get(message.reply_to_message_id);
    return h("div.quote", {
      "data-testid": "reply-quote",
      onclick: (e) => { e.stopPropagation(); jumpTo(message.reply_to_message_id); },
    }, h("span.who", target ? userName(target.sender) : "Reply"), h("span.what", target ? previewText(target) : "Earlier message"));
  }

  function jumpTo(messageId) {
    const el = nodes.get(`m${messageId}`);
    if (!el) return;
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    el.classList.remove("highlight");
    void el.offsetWidth;
    el.classList.add("highlight");
  }

  function readMark(message) {
    const st = store.readState(message);
    const glyph = { pending: "○", failed: "!", sent: "✓", read: "✓✓" }[st];
    return h("span.read-state", { "data-testid": "read-state", "data-state": st, title: st, "aria-label": st }, glyph);
  }

  function messageSignature(m, showSender) {
    const mine = state.me && m.sender_id === state.me.id;
    const quote = m.reply_to_message_id ? box.byId.get(m.reply_to_message_id) : null;
    return JSON.stringify([m.text, m.transcript, m.is_deleted, m.is_edited, m.reactions, mine ? store.readState(m) : "", (m.media || []).map((x) => x.id),
      store.myReaction(m) || "", m.is_pinned, showSender, quote ? [quote.text, quote.is_deleted] : null, m.ai?.incomplete]);
  }

  function buildMessage(m, showSender, grouped) {
    const mine = state.me && m.sender_id === state.me.id;
    const isAi = m.sender?.is_bot || Boolean(m.ai);
    const el = h("article.message", {
      class: [mine ? "mine" : "", m.is_deleted ? "deleted" : "", grouped ? "grouped" : ""].join(" "),
      tabindex: "0",
      "data-testid": "message",
      "data-message-id": m.id,
      "data-seq": m.seq,
      "data-sender-id": m.sender_id ?? "",
      "aria-label": `${mine ? "You" : userName(m.sender)}, ${formatClock(m.created_at)}`,
      "aria-haspopup": "dialog",
    });
    if (showSender && !mine) el.append(h("div.sender", userName(m.sender)));
    if (m.is_deleted) {
      el.append(h("span.text", "Message deleted"));
    } else {
      // In the direct AI chat every answer follows its question: no quote needed.
      const quote = isAi && state.chats.get(chatId)?.chat_type === "ai" ? null : quoteOf(m);
      if (quote) el.append(quote);
      if (m.media && m.media.length) el.append(...renderMedia(m.media));
      const words = transcriptOf(m);
      if (words) el.append(words);
      // The AI's answers are Markdown, rendered; people's texts stay as typed.
      if (m.text) el.append(isAi ? markdownElement(m.text, { "data-testid": "message-text" }) : h("span.text", { "data-testid": "message-text" }, m.text));
    }
    el.append(h("span.meta",
      m.is_pinned ? h("span", "pinned ·") : null,
      isAi && m.ai ? h("span", { title: m.ai.model }, m.ai.incomplete ? "stopped ·" : "AI ·") : null,
      m.is_edited && !m.is_deleted ? h("span", "edited") : null,
      h("time", { datetime: m.created_at }, formatClock(m.created_at)),
      mine && !m.is_deleted ? readMark(m) : null));
    if (isAi && !m.is_deleted && m.sender?.is_bot) el.append(ratingButtons(chatId, m));
    if (!m.is_deleted && m.reactions && m.reactions.length) {
      const minePick = store.myReaction(m);
      el.append(h("div.reactions", m.reactions.map((r) => h("button.reaction", {
        type: "button", class: r.emoji === minePick ? "mine" : "", "data-testid": "reaction", "data-emoji": r.emoji,
        "aria-pressed": r.emoji === minePick ? "true" : "false", "aria-label": `${r.emoji} ${r.count}`,
        onclick: (e) => { e.stopPropagation(); actions.toggleReaction(m, r.emoji).catch((err) => toast(err.message, "error")); },
      }, `${r.emoji} ${r.count}`))));
    }
    const open = (e) => {
      if (e.target.closest("button, a, audio, video, .quote")) return;
      e.preventDefault();
      openActions(m);
    };
    el.addEventListener("click", open);
    el.addEventListener("contextmenu", open);
    el.addEventListener("keydown", (e) => { if ((e.key === "Enter" || e.key === " ") && e.target === el) open(e); });
    return el;
  }

  /** Under a voice note (audio, video): its words, or a button that asks for them. */
  function transcriptOf(m) {
    if (typeof m.transcript === "string") {
      return h("p.transcript", { "data-testid": "message-transcript" }, m.transcript);
    }
    if (!["voice", "audio", "video"].includes(m.message_type)) return null;
    const button = h("button.button.small.secondary.transcribe", {
      type: "button", "data-testid": "transcribe-button",
      onclick: (e) => {
        e.stopPropagation();
        button.disabled = true;
        button.textContent = "Transcribing…";
        actions.transcribe(m).catch((err) => {
          button.disabled = false;
          button.textContent = "Transcribe";
          toast(err.message, "error");
        });
      },
    }, "Transcribe");
    return button;
  }

  function buildPending(p) {
    const el = h("article.message.mine.pending", {
      class: p.failed ? "failed" : "",
      "data-testid": "message",
      "data-pending": "true",
      "data-client-msg-id": p.client_msg_id,
      "aria-label": p.failed ? "Not sent" : "Sending",
    });
    if (p.reply_to_message_id) el.append(quoteOf(p));
    if (p.preview) {
      el.append(...renderMedia([{ kind: p.preview.kind, url: p.preview.url, duration: p.preview.duration }]));
    }
    if (p.text) el.append(h("span.text", { "data-testid": "message-text" }, p.text));
    el.append(h("span.meta", p.uploading ? h("span", "uploading…") : null, h("time", formatClock(p.created_at)), readMark(p)));
    if (p.failed) {
      el.append(h("div.retry",
        h("button.button.small", { type: "button", "data-testid": "retry-send", onclick: () => actions.retryPending(p.client_msg_id) }, "Retry"),
        h("button.button.small.secondary", { type: "button", onclick: () => actions.discardPending(p.client_msg_id) }, "Discard")));
    }
    return el;
  }

  /** What of a live reply needs a new bubble; the text alone is updated in place. */
  /** What the AI is doing while a tool of its reply runs (ai_reply_tool). */
  const AI_TOOL_LABELS = { search_history: "Searching the chat…", generate_image: "Drawing…" };

  function aiShape(reply) {
    return JSON.stringify([reply.status, Boolean(reply.stopping), reply.model || "", reply.tool || ""]);
  }

  /** A delta: the same bubble with its text grown, so that its Stop button stays put under a
   * finger (a bubble rebuilt on every delta would lose the tap). */
  function patchAi(el, reply) {
    if (el.dataset.shape !== aiShape(reply)) return false;
    renderMarkdownThrottled(el.querySelector('[data-testid="ai-streaming-text"]'), reply.text || "");
    return true;
  }

  function buildAi(reply) {
    const streaming = reply.status === "streaming";
    const el = h("article.message.ai-bubble", {
      class: streaming ? "" : "done",
      "data-testid": "ai-streaming",
      "data-reply-id": reply.reply_id,
      "data-status": reply.status,
      "data-shape": aiShape(reply),
      "aria-busy": streaming ? "true" : "false",
      "aria-label": "AI reply",
    },
    reply.model ? h("div.model", reply.model) : null,
    markdownElement(reply.text || "", { "data-testid": "ai-streaming-text" }),
    streaming && reply.tool ? h("div.model", { "data-testid": "ai-tool", role: "status" }, AI_TOOL_LABELS[reply.tool] || "Working…") : null,
    streaming ? h("div.ai-stop", h("button.button.small.secondary", {
      type: "button", "data-testid": "ai-stop", disabled: Boolean(reply.stopping), "aria-label": "Stop the AI reply",
      onclick: () => actions.cancelAiReply(reply.reply_id).catch((err) => toast(err.message, "error")),
    }, icon("stop", 16), reply.stopping ? "Stopping…" : "Stop")) : null);
    return el;
  }

  function render() {
    if (disposed) return;
    const chat = state.chats.get(chatId);
    const atBottom = isNearBottom();
    const items = [];
    const messages = store.orderedMessages(chatId);
    const group = chat && chat.chat_type === "group";
    let prev = null;
    let lastDay = null;
    for (const m of messages) {
      const day = new Date(m.created_at).toDateString();
      if (day !== lastDay) {
        items.push({ key: `d${day}`, sig: day, build: () => h("div.day", { role: "separator" }, formatDay(m.created_at)) });
        lastDay = day;
        prev = null;
      }
      const grouped = prev && prev.sender_id === m.sender_id && Date.parse(m.created_at) - Date.parse(prev.created_at) < 300000;
      const showSender = group && !grouped;
      items.push({ key: `m${m.id}`, sig: messageSignature(m, showSender) + (grouped ? "g" : ""), build: () => buildMessage(m, showSender, grouped) });
      prev = m;
    }
    const pendings = store.pendingOf(chatId).filter((p) => !(p.message_id && box.byId.has(p.message_id)));
    for (const p of pendings) {
      items.push({ key: `p${p.client_msg_id}`, sig: JSON.stringify([p.failed, p.uploading, p.text, Boolean(p.preview)]), build: () => buildPending(p) });
    }
    for (const reply of store.aiStreamsOf(chatId)) {
      items.push({ key: `a${reply.reply_id}`, sig: JSON.stringify([reply.text, reply.status, reply.stopping, reply.model, reply.tool]), build: () => buildAi(reply), patch: (el) => patchAi(el, reply) });
    }
    if (!messages.length && !pendings.length && box.loaded) {
      items.push({ key: "empty", sig: "", build: () => h("p.empty", chat?.chat_type === "ai" ? "Ask the AI anything." : "No messages here yet.") });
    }
    const keep = new Set();
    let anchor = loader;
    for (const item of items) {
      keep.add(item.key);
      let el = nodes.get(item.key);
      if (el && el.dataset.sig !== item.sig && item.patch && item.patch(el)) {
        el.dataset.sig = item.sig;
      } else if (!el || el.dataset.sig !== item.sig) {
        const fresh = item.build();
        fresh.dataset.sig = item.sig;
        if (el) {
          keepMedia(el, fresh);
          el.replaceWith(fresh);
        }
        el = fresh;
        nodes.set(item.key, el);
      }
      if (anchor.nextSibling !== el) anchor.after(el);
      anchor = el;
    }
    for (const [key, el] of nodes) {
      if (!keep.has(key)) {
        el.remove();
        nodes.delete(key);
      }
    }
    if (atBottom) scrollToBottom();
    if (isNearBottom()) actions.markRead(chatId);
  }

  // -- history ----------------------------------------------------------------------------------------

  let loadingOlder = false;
  async function loadOlder() {
    if (loadingOlder || !box.hasMore || !box.loaded) return;
    loadingOlder = true;
    loader.hidden = false;
    const fromBottom = list.scrollHeight - list.scrollTop;
    try {
      await actions.loadOlder(chatId);
    } catch (error) {
      toast(error.message, "error");
    } finally {
      loader.hidden = true;
      loadingOlder = false;
    }
    list.scrollTop = list.scrollHeight - fromBottom;
    fillViewport();
  }

  function fillViewport() {
    if (!disposed && box.hasMore && list.scrollHeight <= list.clientHeight + 40) loadOlder();
  }

  list.addEventListener("scroll", () => {
    if (list.scrollTop < 150) loadOlder();
    if (isNearBottom()) actions.markRead(chatId);
  }, { passive: true });

  // -- actions sheet -------------------------------------------------------------------------------------

  function openActions(m) {
    if (m.is_deleted) return;
    haptics.selection();
    const mine = state.me && m.sender_id === state.me.id;
    const chat = state.chats.get(chatId);
    const details = state.details.get(chatId);
    const me = details?.members.find((x) => x.id === state.me?.id);
    const canDelete = mine || (chat?.chat_type === "group" && me?.is_admin);
    const isAi = m.sender?.is_bot || Boolean(m.ai);
    let ref;
    const act = (fn) => () => { ref.close(); fn(); };
    const myPick = store.myReaction(m);
    const content = h("div",
      h("div.emoji-row", { role: "group", "aria-label": "React" }, REACTIONS.map((emoji) => h("button", {
        type: "button", "data-testid": "react-option", "data-emoji": emoji, "aria-label": `React ${emoji}`, "aria-pressed": myPick === emoji ? "true" : "false",
        onclick: act(() => actions.toggleReaction(m, emoji).catch((err) => toast(err.message, "error"))),
      }, emoji))),
      h("ul.menu",
        h("li", h("button", { type: "button", "data-testid": "action-reply", onclick: act(() => startReply(m)) }, icon("reply", 18), "Reply")),
        m.text ? h("li", h("button", { type: "button", "data-testid": "action-copy", onclick: act(async () => toast(await copyText(m.text) ? "Copied" : "Could not copy")) }, icon("copy", 18), "Copy text")) : null,
        mine && m.text !== null ? h("li", h("button", { type: "button", "data-testid": "action-edit", onclick: act(() => startEdit(m)) }, icon("pencil", 18), "Edit")) : null,
        isAi && chat?.chat_type === "ai" ? h("li", h("button", { type: "button", "data-testid": "action-regenerate", onclick: act(() => api.post(`/messages/${m.id}/regenerate`).catch((err) => toast(err.message, "error"))) }, icon("refresh", 18), "Regenerate")) : null,
        canDelete ? h("li", h("button.danger", { type: "button", "data-testid": "action-delete", onclick: act(() => confirmDelete(m)) }, icon("trash", 18), "Delete")) : null));
    ref = sheet("Message", content);
  }

  function confirmDelete(m) {
    let ref;
    ref = sheet("Delete this message?", h("div.row-actions", { style: { padding: "8px 0" } },
      h("button.button.danger", { type: "button", "data-testid": "confirm-delete", onclick: () => { ref.close(); actions.deleteMessage(m).catch((err) => toast(err.message, "error")); } }, "Delete for everyone"),
      h("button.button.secondary", { type: "button", onclick: () => ref.close() }, "Cancel")));
  }

  function showContext(kind, m) {
    contextBar.hidden = false;
    mount(contextBar,
      h("div.what", { "data-testid": kind === "edit" ? "edit-preview" : "reply-preview" },
        h("b", kind === "edit" ? "Editing" : `Reply to ${userName(m.sender)}`), previewText(m)),
      h("button.icon-button", { type: "button", "aria-label": kind === "edit" ? "Cancel editing" : "Cancel reply", "data-testid": "context-cancel", onclick: clearContext }, icon("close")));
  }

  function clearContext() {
    if (editing) input.value = "";
    replyTo = null;
    editing = null;
    contextBar.hidden = true;
    contextBar.replaceChildren();
    updateButtons();
  }

  function startReply(m) {
    editing = null;
    replyTo = m;
    showContext("reply", m);
    input.focus();
  }

  function startEdit(m) {
    replyTo = null;
    editing = m;
    input.value = m.text || "";
    showContext("edit", m);
    updateButtons();
    input.focus();
  }

  // -- composer ----------------------------------------------------------------------------------------

  /** Whether the AI can be asked in this chat (its direct chat, or a group). */
  function aiHears() {
    const type = state.chats.get(chatId)?.chat_type;
    return type === "ai" || type === "group";
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  }

  function updateButtons() {
    sendButton.disabled = !input.value.trim();
    autosize();
  }

  async function send() {
    const text = input.value.trim();
    if (!text) return;
    actions.stopTyping(chatId);
    if (editing) {
      const target = editing;
      clearContext();
      input.value = "";
      updateButtons();
      try {
        await actions.editMessage(target, text);
      } catch (error) {
        toast(error.message, "error");
      }
      return;
    }
    actions.sendMessage(chatId, { text, replyTo: replyTo ? replyTo.id : null });
    input.value = "";
    clearContext();
    updateButtons();
    scrollToBottom();
    requestAnimationFrame(scrollToBottom);
    input.focus();
  }

  input.addEventListener("input", () => {
    updateButtons();
    if (input.value.trim() && !editing) actions.userTyping(chatId);
    else actions.stopTyping(chatId);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && finepointer) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape" && (replyTo || editing)) {
      clearContext();
    }
  });
  sendButton.addEventListener("click", send);
  imageButton.addEventListener("click", () => {
    if (!input.value.startsWith("/image ")) input.value = `/image ${input.value.trimStart()}`;
    updateButtons();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  });

  fileInput.addEventListener("change", () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    for (const file of files) {
      actions.sendMedia(chatId, file, mediaKindOf(file), { replyTo: replyTo ? replyTo.id : null });
    }
    clearContext();
    requestAnimationFrame(scrollToBottom);
  });

  // -- voice -------------------------------------------------------------------------------------------

  let recorder = null;
  let recordStart = 0;
  let recordTimer = null;
  let discardRecording = false;

  function setRecordingUi(on) {
    recordingEl.hidden = !on;
    cancelRecording.hidden = !on;
    input.hidden = on;
    attachButton.hidden = on;
    imageButton.hidden = on || !aiHears();
    sendButton.hidden = on;
    voiceButton.dataset.state = on ? "recording" : "idle";
    voiceButton.replaceChildren(icon(on ? "stop" : "mic"));
    voiceButton.setAttribute("aria-label", on ? "Stop and send the voice message" : "Record a voice message");
  }

  async function startRecording() {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      toast("Voice recording is not available here", "error");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      toast("Microphone access was refused", "error");
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"].find((t) => MediaRecorder.isTypeSupported(t));
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const chunks = [];
    discardRecording = false;
    recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      clearInterval(recordTimer);
      setRecordingUi(false);
      const duration = (Date.now() - recordStart) / 1000;
      recorder = null;
      if (discardRecording || !chunks.length || duration < 0.5) return;
      const mime = (type || chunks[0].type || "audio/webm").split(";")[0];
      const file = new File(chunks, mime.includes("ogg") ? "voice.ogg" : "voice.webm", { type: mime });
      actions.sendMedia(chatId, file, "voice", { duration });
      requestAnimationFrame(scrollToBottom);
    });
    recorder.start();
    recordStart = Date.now();
    haptics.impact("medium");
    setRecordingUi(true);
    const tick = () => { recordingEl.textContent = `● Recording ${formatDuration(Math.floor((Date.now() - recordStart) / 1000))}`; };
    tick();
    recordTimer = setInterval(tick, 500);
  }

  voiceButton.addEventListener("click", () => {
    if (recorder) recorder.stop();
    else startRecording();
  });
  cancelRecording.addEventListener("click", () => {
    discardRecording = true;
    if (recorder) recorder.stop();
  });

  // -- wiring ------------------------------------------------------------------------------------------

  const onVisible = () => { if (document.visibilityState === "visible" && isNearBottom()) actions.markRead(chatId); };
  document.addEventListener("visibilitychange", onVisible);
  const offs = [
    store.on(`messages:${chatId}`, render),
    store.on(`ai:${chatId}`, render),
    store.on(`chat:${chatId}`, () => {
      if (!state.chats.has(chatId)) {
        toast("This chat is no longer available");
        navigate("/chats", { replace: true });
        return;
      }
      renderHeader();
      render();
    }),
    store.on(`typing:${chatId}`, renderHeader),
    store.on("presence", renderHeader),
    store.on("connection", renderHeader),
  ];

  async function open() {
    if (!state.chats.has(chatId)) {
      try {
        await actions.loadChatDetails(chatId);
      } catch (error) {
        mount(list, h("p.empty", { role: "alert" }, error.status === 404 ? "This chat does not exist or you are not a member." : error.message));
        composer.hidden = true;
        return;
      }
    } else {
      actions.loadChatDetails(chatId).catch(() => null);
    }
    actions.loadOnline(chatId).catch(() => null);
    imageButton.hidden = !aiHears();
    renderHeader();
    if (!box.loaded) {
      list.setAttribute("aria-busy", "true");
      try {
        await actions.loadLatest(chatId);
      } catch (error) {
        toast(error.message, "error");
      }
      list.removeAttribute("aria-busy");
    }
    if (disposed) return;
    render();
    scrollToBottom();
    actions.markRead(chatId);
    fillViewport();
    if (finepointer) input.focus();
  }

  renderHeader();
  render();
  open();

  return () => {
    disposed = true;
    if (recorder) {
      discardRecording = true;
      recorder.stop();
    }
    actions.stopTyping(chatId);
    offs.forEach((off) => off());
    document.removeEventListener("visibilitychange", onVisible);
    if (state.activeChatId === chatId) state.activeChatId = null;
  };
}
