// Start-up and the router: #/chats, #/chat/12, #/chat/12/info, #/new, #/ai, #/join/<token>,
// #/profile, #/balance, #/assistants, #/assistants/new, #/assistant/12, #/assistant/12/t/<token>,
// #/assistant/12/edit.

import * as telegram from "./telegram.js";
import { api, accessToken, onUser } from "./api.js";
import { Socket } from "./socket.js";
import * as store from "./store.js";
import * as actions from "./actions.js";
import { h, mount, toast } from "./ui.js";
import { renderChats } from "./screens/chats.js";
import { renderConversation } from "./screens/conversation.js";
import { renderInfo } from "./screens/info.js";
import { renderNewChat } from "./screens/newchat.js";
import { renderProfile } from "./screens/profile.js";
import { renderBalance } from "./screens/balance.js";
import { renderAssistants, renderAssistant, renderAssistantEditor, registerKnowledgePanel } from "./screens/assistants.js";
import { knowledgePanel } from "./screens/knowledge.js";

registerKnowledgePanel(knowledgePanel);

const view = document.getElementById("view");
let cleanup = null;
let socket = null;

const ROUTES = [
  [/^\/chats$/, () => renderChats],
  [/^\/chat\/(\d+)$/, () => renderConversation],
  [/^\/chat\/(\d+)\/info$/, () => renderInfo],
  [/^\/new$/, () => renderNewChat],
  [/^\/profile$/, () => renderProfile],
  [/^\/balance$/, () => renderBalance],
  [/^\/ai$/, () => openAiChat],
  [/^\/assistants$/, () => renderAssistants],
  [/^\/assistants\/new$/, () => renderAssistantEditor],
  [/^\/assistant\/(\d+)(?:\/t\/([\w-]+))?$/, () => renderAssistant],
  [/^\/assistant\/(\d+)\/edit$/, () => renderAssistantEditor],
  [/^\/join\/([\w-]+)$/, () => joinChat],
];

export function navigate(route, { replace = false } = {}) {
  const target = `#${route}`;
  if (replace) {
    history.replaceState(null, "", target);
    route_();
  } else if (location.hash === target) {
    route_();
  } else {
    location.hash = target;
  }
}

function currentPath() {
  const path = location.hash.replace(/^#/, "");
  return path.startsWith("/") ? path : "/chats";
}

function route_() {
  const path = currentPath();
  if (cleanup) {
    try { cleanup(); } catch { /* a screen that failed to clean up must not block the next */ }
    cleanup = null;
  }
  telegram.mainButton.hide();
  telegram.backButton.hide();
  mount(document.getElementById("top-actions"));
  document.getElementById("subtitle").textContent = "";
  store.state.activeChatId = null;
  for (const [pattern, screen] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      view.replaceChildren();
      view.dataset.screen = path.split("/")[1];
      cleanup = screen()(view, { params: match.slice(1), navigate }) || null;
      return;
    }
  }
  navigate("/chats", { replace: true });
}

async function openAiChat(container, { navigate: go }) {
  mount(container, h("p.empty", "Opening your AI chat…"));
  try {
    const chat = await api.post("/chats/ai");
    store.setDetails(chat);
    go(`/chat/${chat.id}`, { replace: true });
  } catch (error) {
    mount(container, h("p.empty", { role: "alert" }, error.code === "bot_not_configured" || error.code === "ai_not_configured"
      ? "The AI assistant is not configured on this server." : `Could not open the AI chat: ${error.message}`));
    telegram.backButton.show(() => go("/chats"));
  }
}

async function joinChat(container, { params: [token], navigate: go }) {
  mount(container, h("p.empty", "Joining the chat…"));
  try {
    const chat = await api.post(`/join/${encodeURIComponent(token)}`);
    store.setDetails(chat);
    telegram.haptics.success();
    go(`/chat/${chat.id}`, { replace: true });
  } catch (error) {
    mount(container, h("p.empty", { role: "alert" }, `This invite link does not work: ${error.message}`));
    telegram.backButton.show(() => go("/chats"));
  }
}

/** The route a fresh launch starts on: a deep link (start_param) or the chat list. */
function launchRoute() {
  const param = telegram.startParam || "";
  let m = /^chat_(\d+)$/.exec(param);
  if (m) return `/chat/${m[1]}`;
  m = /^join_([\w-]+)$/.exec(param);
  if (m) return `/join/${m[1]}`;
  m = /^assistant_(\d+)(?:_([\w-]+))?$/.exec(param);
  if (m) return m[2] ? `/assistant/${m[1]}/t/${m[2]}` : `/assistant/${m[1]}`;
  return "/chats";
}

function setConnection(state) {
  store.setConnection(state);
  const el = document.getElementById("connection-status");
  el.dataset.state = state;
  el.querySelector(".connection-label").textContent =
    state === "online" ? "Online" : state === "connecting" ? "Connecting…" : "Offline";
}

function fatal(message, detail) {
  setConnection("offline");
  mount(view, h("section.fatal", { role: "alert" },
    h("h2", message),
    detail ? h("p", detail) : null,
    h("p.hint", "Development: open ", h("a", { href: "/app/dev" }, "/app/dev"), " to sign in as a demo user.")));
}

async function start() {
  telegram.setup();
  if (telegram.launchedFromHash) {
    history.replaceState(null, "", `${location.pathname}${location.search}#${launchRoute()}`);
  }
  if (!telegram.initData) {
    fatal("Open this app from Telegram", "It needs the launch data Telegram gives a Mini App.");
    return;
  }
  onUser((user) => { if (!store.state.me) store.setMe(user); });
  try {
    await accessToken();
    await Promise.all([actions.loadMe(), actions.loadChats()]);
  } catch (error) {
    if (error.status === 401) fatal("Sign-in failed", `${error.message} (${error.code}). Reopen the app.`);
    else fatal("Cannot reach the server", error.message);
    return;
  }
  socket = new Socket({
    onFrame: actions.handleFrame,
    onOpen: () => store.resumeFrame(),
    onState: setConnection,
  });
  actions.attachSocket(socket);
  socket.connect();
  window.addEventListener("hashchange", route_);
  route_();
  api.get("/billing/balance").then(store.setBalance).catch(() => null);
}

start().catch((error) => {
  toast(error.message || "Something went wrong", "error");
});
