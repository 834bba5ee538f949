// Chat info: members and roles, adding people, invite links, the AI's settings, leaving.

import { api } from "../api.js";
import * as store from "../store.js";
import { icon } from "../icons.js";
import * as actions from "../actions.js";
import { h, mount, avatar, chatTitle, userName, toast, copyText } from "../ui.js";
import { backButton, haptics } from "../telegram.js";

const { state } = store;
const MODES = [
  ["off", "Off — the AI stays silent"],
  ["mention", "When mentioned or replied to"],
  ["always", "Answers every message"],
];

export function renderInfo(container, { params, navigate }) {
  const chatId = Number(params[0]);
  backButton.show(() => navigate(`/chat/${chatId}`));
  document.getElementById("title").textContent = "Chat info";
  const page = h("div.page", { "data-testid": "chat-info" }, h("p.empty", "Loading…"));
  mount(container, page);
  let disposed = false;
  let aiSettings = null;
  let models = [];

  function memberRow(member, view, me) {
    const isMe = member.id === state.me?.id;
    const online = state.online.get(member.id) === true;
    const canManage = view.chat_type === "group" && me && (me.role === "owner" || me.role === "admin") && !isMe && member.role !== "owner";
    const controls = [];
    if (view.chat_type === "group" && me?.role === "owner" && !isMe && !member.is_bot) {
      const select = h("select", {
        "aria-label": `Role of ${userName(member)}`, "data-testid": "member-role",
        onchange: async () => {
          try {
            await api.patch(`/chats/${chatId}/members/${member.id}`, { role: select.value });
            haptics.success();
            await actions.loadChatDetails(chatId);
          } catch (error) {
            toast(error.message, "error");
          }
        },
      }, ["member", "admin", "owner"].map((role) => h("option", { value: role, selected: member.role === role }, role)));
      controls.push(select);
    }
    if (canManage) {
      controls.push(h("button.icon-button", {
        type: "button", "aria-label": `Remove ${userName(member)}`, "data-testid": "member-remove",
        onclick: async () => {
          try {
            await api.del(`/chats/${chatId}/members/${member.id}`);
            await actions.loadChatDetails(chatId);
          } catch (error) {
            toast(error.message, "error");
          }
        },
      }, icon("close")));
    }
    return h("li.member", { "data-testid": "member-item", "data-user-id": member.id },
      avatar(userName(member), { size: 38, photo: member.profile_photo_url, online, ai: member.is_bot }),
      h("div.who",
        h("div.name", userName(member), isMe ? " (you)" : ""),
        h("div.sub", member.username ? `@${member.username}` : member.is_bot ? "AI assistant" : "", online ? " · online" : "")),
      member.role !== "member" && view.chat_type === "group" ? h("span.role", { "data-testid": "member-role-label" }, member.role) : null,
      controls);
  }

  function aiCard(view) {
    if (!aiSettings) return null;
    const canEdit = aiSettings.can_edit;
    const mode = h("select", { id: "ai-mode", "data-testid": "ai-mode-select", disabled: !canEdit },
      MODES.map(([value, label]) => h("option", { value, selected: aiSettings.mode === value }, label)));
    const model = h("select", { id: "ai-model", "data-testid": "ai-model-select", disabled: !canEdit },
      h("option", { value: "", selected: !aiSettings.model }, "Default model"),
      models.map((m) => h("option", { value: m.id, selected: aiSettings.model === m.id }, m.display_name)));
    const persona = h("textarea", { id: "ai-persona", "data-testid": "ai-persona-input", maxlength: 4000, disabled: !canEdit, placeholder: "e.g. a concise assistant who answers in English" });
    persona.value = aiSettings.persona || "";
    const temperature = h("input", { id: "ai-temperature", type: "number", min: 0, max: 2, step: 0.1, disabled: !canEdit, "data-testid": "ai-temperature-input", placeholder: "default" });
    temperature.value = aiSettings.temperature ?? "";
    const voiceReplies = h("input", { id: "ai-voice-replies", type: "checkbox", checked: Boolean(aiSettings.voice_replies), disabled: !canEdit, "data-testid": "ai-voice-replies" });
    const errorEl = h("p.error-text", { role: "alert" });
    const save = async () => {
      errorEl.textContent = "";
      const body = { mode: mode.value, model: model.value || null, persona: persona.value.trim() || null, voice_replies: voiceReplies.checked };
      if (temperature.value !== "") body.temperature = Number(temperature.value);
      else body.temperature = null;
      try {
        aiSettings = await api.put(`/chats/${chatId}/ai`, body);
        haptics.success();
        toast("AI settings saved");
      } catch (error) {
        errorEl.textContent = error.message;
        haptics.error();
      }
    };
    aiHintSlot = h("div");
    renderAiHint(view);
    return h("section.card", { "aria-labelledby": "ai-title" },
      h("h2", { id: "ai-title" }, "AI assistant"),
      aiHintSlot,
      view.chat_type === "group" ? h("div.field", h("label", { for: "ai-mode" }, "When the AI answers"), mode) : null,
      h("div.field", h("label", { for: "ai-model" }, "Model"), model),
      h("div.field", h("label", { for: "ai-persona" }, "Persona (instructions for the AI)"), persona),
      h("div.field", h("label", { for: "ai-temperature" }, "Temperature (0–2)"), temperature),
      h("label.check", voiceReplies, "Also answer with a voice note"),
      canEdit ? h("div.row-actions", h("button.button", { type: "button", "data-testid": "ai-settings-save", onclick: save }, "Save AI settings"))
        : h("p.help", "Only group admins change these."),
      errorEl);
  }

  function inviteCard(view, me) {
    if (view.chat_type !== "group") return null;
    const isManager = me && (me.role === "owner" || me.role === "admin");
    const usernameInput = h("input", { id: "add-member", type: "text", placeholder: "@username", autocomplete: "off", "data-testid": "add-member-input" });
    const out = h("div", { "data-testid": "invite-link-box" });
    const add = async () => {
      const username = usernameInput.value.trim().replace(/^@/, "");
      if (!username) return;
      try {
        const result = await api.post(`/chats/${chatId}/invite-by-username`, { username });
        toast(result.status === "added" ? `@${username} was added` : `@${username} will join when they open the app`);
        usernameInput.value = "";
        await actions.loadChatDetails(chatId);
      } catch (error) {
        toast(error.message, "error");
      }
    };
    const createLink = async () => {
      try {
        const link = await api.post(`/chats/${chatId}/invite-link`, {});
        const value = link.url || link.start_param;
        mount(out,
          h("div.invite-link", { "data-testid": "invite-link", "data-token": link.token }, value),
          h("div.row-actions",
            h("button.button.small", { type: "button", "data-testid": "invite-link-copy", onclick: async () => toast(await copyText(value) ? "Link copied" : "Could not copy") }, "Copy"),
            h("button.button.small.danger", {
              type: "button", "data-testid": "invite-link-revoke",
              onclick: async () => {
                try {
                  await api.del(`/chats/${chatId}/invite-link/${encodeURIComponent(link.token)}`);
                  mount(out, h("p.help", "The link no longer works."));
                } catch (error) {
                  toast(error.message, "error");
                }
              },
            }, "Revoke")),
          link.url ? null : h("p.help", "Open the Mini App with this start parameter to join."));
      } catch (error) {
        toast(error.message, "error");
      }
    };
    return h("section.card",
      h("h2", "Invite people"),
      isManager ? [
        h("div.field", h("label", { for: "add-member" }, "Add by username"),
          h("div.row-actions", usernameInput, h("button.button.small", { type: "button", "data-testid": "add-member-button", onclick: add }, "Add"))),
        h("button.button.secondary", { type: "button", "data-testid": "invite-link-create", onclick: createLink }, "Create invite link"),
        out,
      ] : h("p.help", "Only admins can invite people."));
  }

  let membersUl = null;
  let aiHintSlot = null;
  let heroSub = null;

  function subtitleOf(view) {
    if (view.chat_type === "group") return `${view.members.length} ${view.members.length === 1 ? "member" : "members"}`;
    return view.chat_type === "ai" ? "Your AI assistant" : "Private chat";
  }

  /** In a group without the AI: how to bring it in (it joins when the mode is saved). */
  function renderAiHint(view) {
    if (!aiHintSlot) return;
    const absent = view.chat_type === "group" && !(view.members || []).some((m) => m.is_bot);
    mount(aiHintSlot, absent
      ? h("p.help", { "data-testid": "ai-not-in-group" },
        "The AI is not in this group yet: choose when it answers and save, and it joins.")
      : null);
  }

  /** Events refresh the member list only: fields being edited stay as they are. */
  function renderMembers() {
    const view = state.details.get(chatId);
    if (disposed || !view) return;
    renderAiHint(view);
    if (heroSub) heroSub.textContent = subtitleOf(view);
    if (!membersUl) return;
    const me = view.members.find((m) => m.id === state.me?.id);
    const order = { owner: 0, admin: 1, member: 2 };
    const members = [...view.members].sort((a, b) => order[a.role] - order[b.role]);
    mount(membersUl, members.map((m) => memberRow(m, view, me)));
  }

  function render() {
    if (disposed) return;
    const view = state.details.get(chatId);
    if (!view) return;
    const chat = state.chats.get(chatId);
    const me = view.members.find((m) => m.id === state.me?.id);
    const title = chatTitle(chat || view, state.me);
    mount(page,
      h("div.hero",
        avatar(title, { size: 72, photo: view.photo_url, ai: view.chat_type === "ai" }),
        h("h2", { "data-testid": "chat-info-title" }, title),
        heroSub = h("p", { "data-testid": "chat-info-subtitle" }),
        view.description ? h("p", view.description) : null),
      view.chat_type === "group" && me && (me.role === "owner" || me.role === "admin") ? editCard(view) : null,
      view.chat_type !== "ai" ? h("section.card", h("h2", "Members"), membersUl = h("ul.chat-list", { "data-testid": "member-list" })) : null,
      inviteCard(view, me),
      view.chat_type !== "private" ? aiCard(view) : null,
      view.chat_type === "group" ? h("section.card",
        h("button.button.danger", {
          type: "button", "data-testid": "leave-chat-button",
          onclick: async () => {
            try {
              await api.post(`/chats/${chatId}/leave`);
              store.removeChat(chatId);
              navigate("/chats", { replace: true });
            } catch (error) {
              toast(error.message, "error");
            }
          },
        }, "Leave group")) : null);
    renderMembers();
  }

  function editCard(view) {
    const titleInput = h("input", { id: "chat-title", type: "text", maxlength: 255, "data-testid": "chat-title-input" });
    titleInput.value = view.title || "";
    const description = h("textarea", { id: "chat-description", maxlength: 1000 });
    description.value = view.description || "";
    return h("section.card",
      h("h2", "Group"),
      h("div.field", h("label", { for: "chat-title" }, "Title"), titleInput),
      h("div.field", h("label", { for: "chat-description" }, "Description"), description),
      h("button.button.small", {
        type: "button", "data-testid": "chat-save",
        onclick: async () => {
          try {
            store.setDetails(await api.patch(`/chats/${chatId}`, { title: titleInput.value.trim(), description: description.value.trim() || null }));
            toast("Saved");
          } catch (error) {
            toast(error.message, "error");
          }
        },
      }, "Save"));
  }

  async function load() {
    try {
      const view = await actions.loadChatDetails(chatId);
      actions.loadOnline(chatId).catch(() => null);
      if (view.chat_type !== "private") {
        const [settings, list] = await Promise.all([
          api.get(`/chats/${chatId}/ai`).catch(() => null),
          api.get("/llm/models").catch(() => []),
        ]);
        aiSettings = settings;
        models = list;
      }
      render();
    } catch (error) {
      mount(page, h("p.empty", { role: "alert" }, error.message));
    }
  }
  load();
  const offs = [store.on(`chat:${chatId}`, renderMembers), store.on("presence", renderMembers)];
  return () => {
    disposed = true;
    offs.forEach((off) => off());
  };
}
