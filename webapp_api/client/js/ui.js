// Tiny DOM helpers. Text always goes through textContent: user text never reaches innerHTML.

/**
 * h("button.primary", {onclick, "data-testid": "send-button"}, "Send")
 * props: attributes; `on*` functions become listeners; `class`, `dataset`, `style` objects work too.
 * children: strings (as text), nodes, arrays, null/false (skipped).
 */
export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.classList.add(...String(value).split(/\s+/).filter(Boolean));
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Escape text for the rare place that must build markup (none at the moment; kept for callers). */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

export function userName(user) {
  if (!user) return "Deleted account";
  return [user.first_name, user.last_name].filter(Boolean).join(" ") || user.username || "User";
}

export function chatTitle(chat, me) {
  if (!chat) return "";
  if (chat.title) return chat.title;
  if (chat.peer) return userName(chat.peer);
  const other = (chat.members || []).find((m) => me && m.id !== me.id);
  if (other) return userName(other);
  return chat.chat_type === "ai" ? "AI assistant" : "Chat";
}

const AVATAR_COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];

export function avatar(name, { photo = null, size = 44, online = false, ai = false } = {}) {
  const initials = (name || "?").trim().split(/\s+/).slice(0, 2).map((p) => p[0] || "").join("").toUpperCase();
  const color = AVATAR_COLORS[[...(name || "?")].reduce((a, c) => a + c.codePointAt(0), 0) % AVATAR_COLORS.length];
  const el = h("span.avatar", {
    "aria-hidden": "true",
    style: { width: `${size}px`, height: `${size}px`, background: ai ? "var(--accent)" : color, fontSize: `${Math.round(size * 0.38)}px` },
  });
  if (photo && /^https?:\/\//.test(photo)) {
    const img = h("img", { src: photo, alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => img.replaceWith(ai ? "✦" : initials || "?"));
    el.append(img);
  } else {
    el.append(ai ? "✦" : initials || "?");
  }
  if (online) el.append(h("span.online-dot", { "data-testid": "online-dot", title: "online" }));
  return el;
}

export function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  const days = (now - d) / 86400000;
  if (days < 6) return d.toLocaleDateString([], { weekday: "short" });
  return d.toLocaleDateString([], { day: "numeric", month: "short" });
}

export function formatClock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

export function formatDay(iso) {
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return "Today";
  const y = new Date(now); y.setDate(now.getDate() - 1);
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { day: "numeric", month: "long", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}

/** Micro-credits to a short credit amount. */
export function credits(micros) {
  const value = (micros || 0) / 1_000_000;
  return value.toLocaleString([], { maximumFractionDigits: value < 1 ? 4 : 2 });
}

/** "1 credit", "2.5 credits". */
export function creditsText(micros) {
  const amount = credits(micros);
  return `${amount} ${(micros || 0) === 1_000_000 ? "credit" : "credits"}`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

let toastTimer = null;
/** A short message at the bottom of the screen, announced to screen readers. */
export function toast(text, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}

/** Announce text politely (new messages) for assistive technology. */
export function announce(text) {
  const el = document.getElementById("announcer");
  if (!el) return;
  el.textContent = "";
  requestAnimationFrame(() => { el.textContent = text; });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A modal sheet with the given content; returns {close}. Esc and the backdrop close it. */
export function sheet(title, content, { onClose } = {}) {
  const previous = document.activeElement;
  const close = () => {
    backdrop.remove();
    document.removeEventListener("keydown", onKey);
    if (previous && previous.focus) previous.focus();
    if (onClose) onClose();
  };
  const onKey = (e) => { if (e.key === "Escape") close(); };
  const panel = h("div.sheet", { role: "dialog", "aria-modal": "true", "aria-label": title },
    h("div.sheet-head", h("h2", title), h("button.icon-button", { type: "button", "aria-label": "Close", onclick: close }, "✕")),
    content);
  const backdrop = h("div.backdrop", { onclick: (e) => { if (e.target === backdrop) close(); } }, panel);
  document.body.append(backdrop);
  document.addEventListener("keydown", onKey);
  const first = panel.querySelector("button:not(.icon-button), input, textarea, select");
  (first || panel.querySelector("button")).focus();
  return { close, panel };
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { style: { position: "fixed", opacity: "0" } });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }
}
