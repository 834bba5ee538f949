// Profile: bio and notifications (PATCH /me), and what the AI may know about me (GET/PUT /profile).

import { api } from "../api.js";
import * as store from "../store.js";
import { icon } from "../icons.js";
import { h, mount, avatar, userName, toast, creditsText } from "../ui.js";
import { backButton, mainButton, haptics } from "../telegram.js";

const LISTS = [
  ["interests", "Interests"],
  ["skills", "Skills"],
  ["beliefs", "Beliefs"],
  ["desires", "Desires"],
  ["intentions", "Intentions"],
];

function linesOf(textarea) {
  return textarea.value.split("\n").map((line) => line.trim()).filter(Boolean).slice(0, 50).map((line) => line.slice(0, 200));
}

function valuesText(values) {
  return (values || []).map((v) => `${v.name}: ${Number(v.weight).toFixed(1)}`).join("\n");
}

function parseValues(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const m = /^(.*?)(?:\s*[:=]\s*([01](?:\.\d+)?))?$/.exec(trimmed);
    const name = (m && m[1] ? m[1] : trimmed).trim().slice(0, 200);
    const weight = m && m[2] !== undefined ? Math.min(1, Math.max(0, Number(m[2]))) : 0.5;
    if (name) out.push({ name, weight });
  }
  return out.slice(0, 50);
}

export function renderProfile(container, { navigate }) {
  backButton.show(() => navigate("/chats"));
  document.getElementById("title").textContent = "Profile";
  const page = h("div.page", { "data-testid": "profile" }, h("p.empty", "Loading…"));
  mount(container, page);
  let disposed = false;

  async function load() {
    const [me, profile] = await Promise.all([api.get("/me"), api.get("/profile")]);
    if (disposed) return;
    store.setMe(me);
    const bio = h("textarea", { id: "bio", maxlength: 500, "data-testid": "profile-bio", placeholder: "A few words about you" });
    bio.value = me.bio || "";
    const notifications = h("input", { id: "notifications", type: "checkbox", checked: me.notifications_enabled, "data-testid": "profile-notifications" });
    const enabled = h("input", { id: "ai-personal", type: "checkbox", checked: profile.enabled, "data-testid": "profile-enabled" });
    const values = h("textarea", { id: "p-values", "data-testid": "profile-values", placeholder: "honesty: 0.9\ncuriosity: 0.7" });
    values.value = valuesText(profile.data.values);
    const lists = Object.fromEntries(LISTS.map(([key]) => {
      const area = h("textarea", { id: `p-${key}`, "data-testid": `profile-${key}`, placeholder: "One per line" });
      area.value = (profile.data[key] || []).join("\n");
      return [key, area];
    }));
    const about = h("textarea", { id: "p-about", maxlength: 8000, placeholder: "Write a little about yourself and let the AI suggest entries", "data-testid": "profile-analyze-input" });
    const errorEl = h("p.error-text", { role: "alert" });

    const save = async (event) => {
      if (event) event.preventDefault();
      errorEl.textContent = "";
      mainButton.progress(true);
      try {
        const data = { values: parseValues(values.value) };
        for (const [key] of LISTS) data[key] = linesOf(lists[key]);
        const [updatedMe] = await Promise.all([
          api.patch("/me", { bio: bio.value.trim() || null, notifications_enabled: notifications.checked }),
          api.put("/profile", { enabled: enabled.checked, data }),
        ]);
        store.setMe(updatedMe);
        haptics.success();
        toast("Profile saved");
      } catch (error) {
        errorEl.textContent = error.message;
        haptics.error();
      } finally {
        mainButton.progress(false);
      }
    };

    const suggest = async () => {
      const text = about.value.trim();
      if (!text) return;
      try {
        const data = await api.post("/profile/analyze", { text });
        const merge = (area, items) => {
          const have = new Set(linesOf(area).map((x) => x.toLowerCase()));
          const extra = items.filter((x) => !have.has(x.toLowerCase()));
          if (extra.length) area.value = [...linesOf(area), ...extra].join("\n");
        };
        for (const [key] of LISTS) merge(lists[key], data[key] || []);
        const haveValues = new Set(parseValues(values.value).map((v) => v.name.toLowerCase()));
        const extraValues = (data.values || []).filter((v) => !haveValues.has(v.name.toLowerCase()));
        if (extraValues.length) values.value = [values.value.trim(), valuesText(extraValues)].filter(Boolean).join("\n");
        toast("Suggestions added below: review them, then save");
      } catch (error) {
        toast(error.code === "ai_not_configured" ? "The AI is not configured on this server" : error.message, "error");
      }
    };

    const form = h("form", { "data-testid": "profile-form" },
      h("div.hero",
        avatar(userName(me), { size: 72, photo: me.profile_photo_url }),
        h("h2", userName(me)),
        me.username ? h("p", `@${me.username}`) : null),
      h("section.card",
        h("h2", "About you"),
        h("div.field", h("label", { for: "bio" }, "Bio"), bio),
        h("label.check", notifications, "Notify me in Telegram about messages I miss"),
        h("button.button.secondary.small", { type: "button", "data-testid": "profile-balance-link", onclick: () => navigate("/balance") },
          icon("star", 16), "Balance", store.state.balance ? `: ${creditsText(store.state.balance.available)}` : "")),
      h("section.card",
        h("h2", "What the AI knows about you"),
        h("p.help", "Used only in your own AI chat, and only when enabled."),
        h("label.check", enabled, "Let the AI use this in my AI chat"),
        h("div.field", h("label", { for: "p-values" }, "Values (name: weight 0–1, one per line)"), values),
        LISTS.map(([key, label]) => h("div.field", h("label", { for: `p-${key}` }, `${label} (one per line)`), lists[key])),
        h("div.field", h("label", { for: "p-about" }, "Suggest from a text about you"), about),
        h("button.button.secondary.small", { type: "button", "data-testid": "profile-analyze", onclick: suggest }, "✦ Suggest entries")),
      h("section.card", errorEl, h("button.button.primary-action", { type: "submit", "data-testid": "profile-save" }, "Save profile")));
    form.addEventListener("submit", save);
    mount(page, form);
    mainButton.show("Save profile", save);
  }

  load().catch((error) => mount(page, h("p.empty", { role: "alert" }, error.message)));
  return () => {
    disposed = true;
    mainButton.hide();
  };
}
