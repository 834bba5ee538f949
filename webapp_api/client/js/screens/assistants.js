// Assistants: the catalogue (#/assistants), one assistant's page (#/assistant/12, or
// #/assistant/12/t/<share token> from a link), and the editor (#/assistants/new,
// #/assistant/12/edit). The editor leaves `<section id="assistant-knowledge">` to the
// knowledge panel registered with `registerKnowledgePanel`.

import { api } from "../api.js";
import * as store from "../store.js";
import { state } from "../store.js";
import { icon } from "../icons.js";
import { h, mount, avatar, toast, debounce, sheet, copyText } from "../ui.js";
import { backButton, haptics } from "../telegram.js";

const PAGE_SIZE = 30;
let knowledgePanel = null;

/**
 * The editor calls `panel(section, assistant)` for a saved assistant of the user's, with the
 * `<section id="assistant-knowledge">` to fill (documents and their progress); it may return a
 * cleanup function.
 */
export function registerKnowledgePanel(panel) {
  knowledgePanel = panel;
}

function assistantItem(assistant, go, suffix = "") {
  return h("li", h("button.chat-item", {
    type: "button", "data-testid": "assistant-item", "data-assistant-id": assistant.id,
    onclick: () => go(`/assistant/${assistant.id}${suffix}`),
  },
  avatar(assistant.name, { size: 44 }),
  h("span.body",
    h("span.row", h("span.name", { "data-testid": "assistant-name" }, assistant.name),
      h("span.kind-tag", assistant.archived ? "archived" : assistant.is_mine ? assistant.visibility : `${assistant.uses} chats`)),
    h("span.row", h("span.preview", assistant.description || "")))));
}

export function renderAssistants(container, { navigate: go }) {
  backButton.show(() => go("/chats"));
  document.getElementById("title").textContent = "Assistants";
  mount(document.getElementById("top-actions"),
    h("button.icon-button", { type: "button", "aria-label": "New assistant", title: "New assistant", "data-testid": "new-assistant-button", onclick: () => go("/assistants/new") }, icon("pencil")));
  let mine = false;
  let disposed = false;
  const search = h("input", {
    type: "search", id: "assistant-search", placeholder: "Search assistants", autocomplete: "off",
    "data-testid": "assistant-search", "aria-label": "Search assistants",
  });
  const tabs = h("div.segmented", { role: "tablist" },
    ["All", "Mine"].map((label, index) => h("button", {
      type: "button", role: "tab", "data-testid": `assistants-tab-${label.toLowerCase()}`,
      "aria-selected": index === 0 ? "true" : "false",
      onclick: (e) => {
        mine = index === 1;
        for (const tab of tabs.children) tab.setAttribute("aria-selected", tab === e.currentTarget ? "true" : "false");
        load();
      },
    }, label)));
  const list = h("ul.chat-list", { "data-testid": "assistant-list", "aria-label": "Assistants" });
  mount(container, h("div.search-bar", h("label.visually-hidden", { for: "assistant-search" }, "Search"), search), tabs, h("div.scroll", list));

  async function load() {
    const query = { limit: PAGE_SIZE };
    if (search.value.trim()) query.query = search.value.trim();
    if (mine) query.owner = "me";
    try {
      const items = await api.get("/assistants", query);
      if (disposed) return;
      mount(list, items.length ? items.map((a) => assistantItem(a, go))
        : h("li.empty", { "data-testid": "assistants-empty" }, mine ? "You have no assistants yet." : "No assistants found."));
    } catch (error) {
      if (!disposed) mount(list, h("li.empty", { role: "alert" }, error.message));
    }
  }
  search.addEventListener("input", debounce(load, 250));
  load();
  return () => { disposed = true; };
}

async function chooseGroup(assistant, token) {
  const groups = [...state.chats.values()].filter((chat) => chat.chat_type === "group" && chat.is_active !== false);
  if (!groups.length) {
    toast("You are in no group yet", "error");
    return;
  }
  const { close } = sheet("Add to a group", h("ul.chat-list", { "data-testid": "group-picker" },
    groups.map((chat) => h("li", h("button.chat-item", {
      type: "button", "data-testid": "group-choice", "data-chat-id": chat.id,
      onclick: async () => {
        try {
          const view = await api.post(`/chats/${chat.id}/assistant`, { assistant_id: assistant.id, share_token: token || undefined });
          store.setDetails(view);
          haptics.success();
          toast(`${assistant.name} is now the AI of ${chat.title || "the group"}`);
          close();
        } catch (error) {
          toast(error.code === "not_chat_admin" ? "Only the group's admins can choose its AI" : error.message, "error");
        }
      },
    }, avatar(chat.title || "Group", { size: 36 }), h("span.body", h("span.name", chat.title || "Group")))))));
}

export function renderAssistant(container, { params: [id, token], navigate: go }) {
  backButton.show(() => go("/assistants"));
  document.getElementById("title").textContent = "Assistant";
  const page = h("div.page", { "data-testid": "assistant-page" }, h("p.empty", "Loading…"));
  mount(container, page);
  let disposed = false;

  (async () => {
    let assistant;
    try {
      assistant = await api.get(`/assistants/${id}`, token ? { share_token: token } : undefined);
    } catch (error) {
      if (!disposed) mount(page, h("p.empty", { role: "alert" }, error.status === 404 ? "This assistant does not exist or is not shared with you." : error.message));
      return;
    }
    if (disposed) return;
    document.getElementById("title").textContent = assistant.name;
    const startChat = async () => {
      try {
        const chat = await api.post(`/assistants/${assistant.id}/chat`, token ? { share_token: token } : {});
        store.setDetails(chat);
        go(`/chat/${chat.id}`);
      } catch (error) {
        toast(error.message, "error");
      }
    };
    const share = assistant.is_mine && assistant.visibility !== "private"
      ? h("section.card", { "data-testid": "assistant-share" }, h("h2", "Share"),
        h("p.invite-link", { "data-testid": "assistant-share-link" }, assistant.url || `startapp=${assistant.start_param}`),
        h("button.button", { type: "button", onclick: async () => toast(await copyText(assistant.url || assistant.start_param) ? "Copied" : "Could not copy") }, "Copy link"))
      : null;
    mount(page,
      h("div.hero",
        avatar(assistant.name, { size: 72 }),
        h("h2", { "data-testid": "assistant-title" }, assistant.name),
        h("p", `${assistant.uses} ${assistant.uses === 1 ? "conversation" : "conversations"}${assistant.archived ? " · archived" : ""}`),
        assistant.description ? h("p", { "data-testid": "assistant-description" }, assistant.description) : null),
      h("section.card",
        h("button.button.primary-action", { type: "button", "data-testid": "start-assistant-chat", disabled: assistant.archived, onclick: startChat }, "Start chat"),
        h("button.button", { type: "button", "data-testid": "add-assistant-to-group", disabled: assistant.archived, onclick: () => chooseGroup(assistant, token) }, "Add to group"),
        assistant.is_mine ? h("button.button", { type: "button", "data-testid": "edit-assistant", onclick: () => go(`/assistant/${assistant.id}/edit`) }, "Edit") : null),
      share,
      assistant.is_mine ? usageCard(assistant) : null);
  })();
  return () => { disposed = true; };
}

function usageCard(assistant) {
  const card = h("section.card", { "data-testid": "assistant-usage" }, h("h2", "Usage"), h("p.empty", "Loading…"));
  api.get(`/assistants/${assistant.id}/usage`).then((usage) => {
    mount(card, h("h2", "Usage"),
      h("p", `${usage.conversations} conversations · ${usage.messages} replies · ${usage.ratings.up} good · ${usage.ratings.down} bad`),
      usage.recent_comments.length ? h("ul", usage.recent_comments.map((c) => h("li", `${c.value > 0 ? "👍" : "👎"} ${c.comment}`))) : null);
  }).catch((error) => mount(card, h("h2", "Usage"), h("p.error-text", error.message)));
  return card;
}

function field(label, control) {
  return h("div.field", h("label", { for: control.id }, label), control);
}

export function renderAssistantEditor(container, { params: [id], navigate: go }) {
  const editing = Boolean(id);
  backButton.show(() => go(editing ? `/assistant/${id}` : "/assistants"));
  document.getElementById("title").textContent = editing ? "Edit assistant" : "New assistant";
  const page = h("div.page", { "data-testid": "assistant-editor" }, h("p.empty", "Loading…"));
  mount(container, page);
  let disposed = false;
  let cleanupPanel = null;

  (async () => {
    const [assistant, models] = await Promise.all([
      editing ? api.get(`/assistants/${id}`) : null,
      api.get("/llm/models").catch(() => []),
    ]);
    if (disposed) return;
    const name = h("input", { id: "assistant-name", type: "text", maxlength: 64, required: true, "data-testid": "assistant-name-input" });
    const description = h("textarea", { id: "assistant-description", maxlength: 1000, "data-testid": "assistant-description-input" });
    const instructions = h("textarea", { id: "assistant-instructions", maxlength: 8000, required: true, rows: 6, "data-testid": "assistant-instructions-input", placeholder: "Who the assistant is and how it answers" });
    const greeting = h("textarea", { id: "assistant-greeting", maxlength: 2000, "data-testid": "assistant-greeting-input", placeholder: "Its first message in a new chat (optional)" });
    const model = h("select", { id: "assistant-model", "data-testid": "assistant-model-select" },
      h("option", { value: "" }, "Server default"),
      models.map((m) => h("option", { value: m.id }, m.display_name)));
    const visibility = h("select", { id: "assistant-visibility", "data-testid": "assistant-visibility-select" },
      h("option", { value: "private" }, "Only me"),
      h("option", { value: "link" }, "Anyone with the link"),
      h("option", { value: "public" }, "Everyone (catalogue)"));
    if (assistant) {
      name.value = assistant.name;
      description.value = assistant.description || "";
      instructions.value = assistant.instructions;
      greeting.value = assistant.greeting || "";
      model.value = assistant.model || "";
      visibility.value = assistant.visibility;
    }
    const errorEl = h("p.error-text", { role: "alert", "data-testid": "assistant-error" });
    const save = async (event) => {
      event.preventDefault();
      errorEl.textContent = "";
      const body = {
        name: name.value.trim(),
        instructions: instructions.value.trim(),
        description: description.value.trim() || null,
        greeting: greeting.value.trim() || null,
        model: model.value || null,
        visibility: visibility.value,
      };
      try {
        const saved = editing ? await api.patch(`/assistants/${id}`, body) : await api.post("/assistants", body);
        haptics.success();
        go(`/assistant/${saved.id}`, { replace: true });
      } catch (error) {
        errorEl.textContent = error.message;
        haptics.error();
      }
    };
    const archive = async () => {
      try {
        await api.del(`/assistants/${id}`);
        toast("Assistant archived");
        go("/assistants", { replace: true });
      } catch (error) {
        toast(error.message, "error");
      }
    };
    const knowledge = h("section.card", { id: "assistant-knowledge", "data-testid": "assistant-knowledge" });
    mount(page,
      h("form.card", { onsubmit: save, "data-testid": "assistant-form" },
        field("Name", name), field("Description", description), field("Instructions", instructions),
        field("Greeting", greeting), field("Model", model), field("Who may use it", visibility),
        errorEl,
        h("button.button.primary-action", { type: "submit", "data-testid": "save-assistant" }, editing ? "Save" : "Create")),
      assistant ? knowledge : null,
      assistant && !assistant.archived ? h("section.card", h("button.button.danger", { type: "button", "data-testid": "archive-assistant", onclick: archive }, "Archive")) : null);
    if (assistant && knowledgePanel) cleanupPanel = knowledgePanel(knowledge, assistant) || null;
  })().catch((error) => { if (!disposed) mount(page, h("p.empty", { role: "alert" }, error.message)); });
  return () => {
    disposed = true;
    if (cleanupPanel) cleanupPanel();
  };
}

// -- ratings under the AI's replies -----------------------------------------------------------------

const myRatings = new Map(); // message id -> "up" | "down", as rated in this session

function commentSheet(path, value) {
  const input = h("input", { type: "text", maxlength: 1000, placeholder: "What was good or bad? (optional)", "aria-label": "Comment", "data-testid": "rating-comment" });
  const form = h("form.rating-comment", { "data-testid": "rating-comment-form" },
    input, h("button.button", { type: "submit", "data-testid": "rating-comment-send" }, "Send"));
  const { close } = sheet(value === "up" ? "Good answer" : "Bad answer", form);
  input.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!input.value.trim()) {
      close();
      return;
    }
    try {
      await api.put(path, { value, comment: input.value.trim() });
      toast("Thanks for the feedback");
      close();
    } catch (error) {
      toast(error.message, "error");
    }
  });
}

/** Thumbs up/down under an AI message (a comment may follow in a sheet); pressing the chosen
 * one again takes the rating back. Text only: a message holds no controls beyond buttons. */
export function ratingButtons(chatId, message) {
  const path = `/chats/${chatId}/messages/${message.id}/rating`;
  const row = h("div.reactions", { "data-testid": "rating" });
  const paint = () => {
    for (const button of row.children) {
      const chosen = myRatings.get(message.id) === button.dataset.value;
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
      button.classList.toggle("mine", chosen);
    }
  };
  const rate = async (value) => {
    try {
      if (myRatings.get(message.id) === value) {
        await api.del(path);
        myRatings.delete(message.id);
      } else {
        await api.put(path, { value });
        myRatings.set(message.id, value);
        commentSheet(path, value);
      }
      paint();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  for (const [value, glyph] of [["up", "👍"], ["down", "👎"]]) {
    row.append(h("button.reaction", {
      type: "button", "data-value": value, "data-testid": `rate-${value}`, "aria-label": value === "up" ? "Good answer" : "Bad answer",
      onclick: (e) => { e.stopPropagation(); rate(value); },
    }, glyph));
  }
  paint();
  return row;
}
