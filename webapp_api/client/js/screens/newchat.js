// New chat: a private chat by username, a group, or the AI assistant.

import { api } from "../api.js";
import * as store from "../store.js";
import { h, mount, toast } from "../ui.js";
import { backButton, mainButton, haptics } from "../telegram.js";

function cleanUsername(value) {
  return value.trim().replace(/^@/, "");
}

async function findUser(username) {
  try {
    return await api.get(`/users/by-username/${encodeURIComponent(username)}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

export function renderNewChat(container, { navigate }) {
  backButton.show(() => navigate("/chats"));
  document.getElementById("title").textContent = "New chat";
  let mode = "private";

  const username = h("input", { id: "new-username", type: "text", placeholder: "@username", autocomplete: "off", autocapitalize: "off", "data-testid": "username-input" });
  const groupTitle = h("input", { id: "group-title", type: "text", maxlength: 255, placeholder: "Group name", "data-testid": "group-title-input" });
  const groupMembers = h("input", { id: "group-members", type: "text", placeholder: "@alice @bob", autocomplete: "off", autocapitalize: "off", "data-testid": "group-members-input" });
  const errorEl = h("p.error-text", { role: "alert", "data-testid": "new-chat-error" });

  const privateForm = h("form", { "data-testid": "new-private-form" },
    h("div.field", h("label", { for: "new-username" }, "Their Telegram username"), username),
    h("p.help", "They need to have opened this app once."),
    h("button.button.primary-action", { type: "submit", "data-testid": "create-private-button" }, "Start chat"));
  const groupForm = h("form", { "data-testid": "new-group-form", hidden: true },
    h("div.field", h("label", { for: "group-title" }, "Group name"), groupTitle),
    h("div.field", h("label", { for: "group-members" }, "Members (usernames, separated by spaces or commas)"), groupMembers),
    h("p.help", "People who have not opened the app yet join when they first do."),
    h("button.button.primary-action", { type: "submit", "data-testid": "create-group-button" }, "Create group"));

  const tabs = h("div.segmented", { role: "group", "aria-label": "Chat type" },
    h("button", { type: "button", "aria-pressed": "true", "data-testid": "tab-private", onclick: () => setMode("private") }, "Private"),
    h("button", { type: "button", "aria-pressed": "false", "data-testid": "tab-group", onclick: () => setMode("group") }, "Group"));

  function setMode(next) {
    mode = next;
    tabs.children[0].setAttribute("aria-pressed", String(mode === "private"));
    tabs.children[1].setAttribute("aria-pressed", String(mode === "group"));
    privateForm.hidden = mode !== "private";
    groupForm.hidden = mode !== "group";
    errorEl.textContent = "";
    mainButton.show(mode === "private" ? "Start chat" : "Create group", submit);
    (mode === "private" ? username : groupTitle).focus();
  }

  let busy = false;
  async function submit(event) {
    if (event) event.preventDefault();
    if (busy) return;
    errorEl.textContent = "";
    busy = true;
    mainButton.progress(true);
    try {
      if (mode === "private") await createPrivate();
      else await createGroup();
    } catch (error) {
      errorEl.textContent = error.message;
      haptics.error();
    } finally {
      busy = false;
      mainButton.progress(false);
    }
  }

  async function createPrivate() {
    const name = cleanUsername(username.value);
    if (!name) throw new Error("Enter a username");
    const user = await findUser(name);
    if (!user) throw new Error(`Nobody called @${name} has opened this app yet.`);
    const chat = await api.post("/chats", { chat_type: "private", member_ids: [user.id] });
    store.setDetails(chat);
    haptics.success();
    navigate(`/chat/${chat.id}`, { replace: true });
  }

  async function createGroup() {
    const title = groupTitle.value.trim();
    if (!title) throw new Error("Give the group a name");
    const names = [...new Set(groupMembers.value.split(/[\s,]+/).map(cleanUsername).filter(Boolean))];
    const found = await Promise.all(names.map(findUser));
    const memberIds = found.filter(Boolean).map((u) => u.id);
    const chat = await api.post("/chats", { chat_type: "group", title, member_ids: memberIds });
    const missing = names.filter((_, i) => !found[i]);
    for (const name of missing) {
      await api.post(`/chats/${chat.id}/invite-by-username`, { username: name }).catch(() => null);
    }
    store.setDetails(chat);
    haptics.success();
    if (missing.length) toast(`Invited ${missing.map((n) => `@${n}`).join(", ")}: they join when they open the app`);
    navigate(`/chat/${chat.id}`, { replace: true });
  }

  privateForm.addEventListener("submit", submit);
  groupForm.addEventListener("submit", submit);

  mount(container, h("div.page",
    h("section.card", tabs, privateForm, groupForm, errorEl),
    h("section.card",
      h("h2", "AI assistant"),
      h("p.help", "Your own chat with the AI. Add it to groups from the group's info."),
      h("button.button.secondary", { type: "button", "data-testid": "open-ai-chat", onclick: () => navigate("/ai") }, "✦ Open AI chat"))));
  mainButton.show("Start chat", submit);
  username.focus();
  return () => mainButton.hide();
}
