// Telegram glue: launch parameters, theme, Main/Back buttons, haptics, invoices.
// Works with telegram-web-app.js when it loaded, and without it (a plain browser, tests):
// then the launch parameters are parsed from the URL hash exactly as Telegram passes them,
// and kept in sessionStorage (the key telegram-web-app.js itself uses) so a reload works.

const STORAGE_KEY = "__telegram__initParams";
const LAUNCH_KEYS = ["tgWebAppData", "tgWebAppVersion", "tgWebAppPlatform", "tgWebAppThemeParams", "tgWebAppStartParam"];

const webApp = window.Telegram && window.Telegram.WebApp ? window.Telegram.WebApp : null;

function readStored() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "{}") || {};
  } catch {
    return {};
  }
}

/** The launch parameters of this page: from the hash when it carries them, else the stored ones. */
function parseLaunchParams() {
  const hash = location.hash.replace(/^#/, "");
  const found = {};
  if (hash.includes("tgWebApp")) {
    // Telegram appends its parameters to the hash; an app route may precede them ("#/chats?tg..." is not used).
    const query = hash.startsWith("/") && hash.includes("?") ? hash.slice(hash.indexOf("?") + 1) : hash;
    const params = new URLSearchParams(query);
    for (const key of LAUNCH_KEYS) {
      const value = params.get(key);
      if (value !== null) found[key] = value;
    }
  }
  const search = new URLSearchParams(location.search);
  // The bot's buttons open WEBAPP_URL?startapp=<param>: Telegram passes that only in the URL.
  const startInUrl = search.get("tgWebAppStartParam") || search.get("startapp");
  if (startInUrl) found.tgWebAppStartParam = startInUrl;
  if (found.tgWebAppData) {
    const merged = { ...found };
    try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(merged)); } catch { /* private mode */ }
    return { params: merged, fromHash: true };
  }
  return { params: { ...readStored(), ...found }, fromHash: false };
}

const launch = parseLaunchParams();

/** True inside a Telegram client (the official script loaded and was given initData). */
export const insideTelegram = Boolean(webApp && webApp.initData);

export const initData = (webApp && webApp.initData) || launch.params.tgWebAppData || "";

/** Whether the page was opened with launch parameters in its hash (the app then replaces it with a route). */
export const launchedFromHash = launch.fromHash;

export const platform = (webApp && webApp.platform !== "unknown" && webApp.platform) || launch.params.tgWebAppPlatform || "unknown";
export const version = (webApp && webApp.version) || launch.params.tgWebAppVersion || "6.0";

function initDataField(name) {
  try {
    return new URLSearchParams(initData).get(name);
  } catch {
    return null;
  }
}

export const startParam = (webApp && webApp.initDataUnsafe && webApp.initDataUnsafe.start_param)
  || initDataField("start_param") || launch.params.tgWebAppStartParam || null;

export function initDataUser() {
  try {
    return JSON.parse(initDataField("user") || "null");
  } catch {
    return null;
  }
}

function versionAtLeast(wanted) {
  if (webApp && typeof webApp.isVersionAtLeast === "function") return webApp.isVersionAtLeast(wanted);
  const a = String(version).split(".").map(Number);
  const b = String(wanted).split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] || 0) - (b[i] || 0);
    if (d) return d > 0;
  }
  return true;
}

// -- theme -----------------------------------------------------------------------------------------

function themeParams() {
  if (webApp && webApp.themeParams && Object.keys(webApp.themeParams).length) return webApp.themeParams;
  try {
    return JSON.parse(launch.params.tgWebAppThemeParams || "{}") || {};
  } catch {
    return {};
  }
}

function luminance(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return null;
  const n = parseInt(m[1], 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return (0.299 * r + 0.587 * g + 0.114 * b) / 255;
}

const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

/** Telegram's colours as --tg-theme-* variables, and the scheme app.css picks its fallbacks by:
 * Telegram's, else the one its background implies, else the system's. */
export function applyTheme() {
  const params = themeParams();
  const root = document.documentElement;
  for (const [key, value] of Object.entries(params)) {
    if (typeof value === "string" && /^#[0-9a-f]{3,8}$/i.test(value)) {
      root.style.setProperty(`--tg-theme-${key.replace(/_/g, "-")}`, value);
    }
  }
  let scheme = webApp && webApp.initData ? webApp.colorScheme : null;
  if (!scheme && params.bg_color) {
    const l = luminance(params.bg_color);
    if (l !== null) scheme = l < 0.5 ? "dark" : "light";
  }
  root.dataset.theme = scheme || (systemDark.matches ? "dark" : "light");
  const meta = document.querySelector('meta[name="theme-color"]');
  if (meta && params.header_bg_color) meta.setAttribute("content", params.header_bg_color);
}

// -- buttons ---------------------------------------------------------------------------------------

const useNativeButtons = insideTelegram && versionAtLeast("6.1");
let backHandler = null;
let mainHandler = null;

export const backButton = {
  show(handler) {
    backHandler = handler;
    const el = document.getElementById("back-button");
    if (useNativeButtons) {
      webApp.BackButton.show();
      if (el) el.hidden = true;
    } else if (el) {
      el.hidden = false;
    }
  },
  hide() {
    backHandler = null;
    const el = document.getElementById("back-button");
    if (useNativeButtons) webApp.BackButton.hide();
    if (el) el.hidden = true;
  },
  press() {
    if (backHandler) backHandler();
  },
};

/** Telegram's MainButton. Outside Telegram the screen's own primary button (class
 * "primary-action", hidden when the native one shows) is the in-page equivalent. */
export const mainButton = {
  show(text, onClick, { disabled = false } = {}) {
    mainHandler = onClick;
    if (useNativeButtons) webApp.MainButton.setParams({ text, is_visible: true, is_active: !disabled });
  },
  progress(on) {
    if (!useNativeButtons) return;
    if (on) webApp.MainButton.showProgress(false);
    else webApp.MainButton.hideProgress();
  },
  hide() {
    mainHandler = null;
    if (useNativeButtons) webApp.MainButton.hide();
  },
  press() {
    if (mainHandler) mainHandler();
  },
};

// -- haptics, invoices, links ---------------------------------------------------------------------

const haptic = webApp && insideTelegram && versionAtLeast("6.1") ? webApp.HapticFeedback : null;

export const haptics = {
  impact(style = "light") { if (haptic) haptic.impactOccurred(style); },
  success() { if (haptic) haptic.notificationOccurred("success"); },
  error() { if (haptic) haptic.notificationOccurred("error"); },
  selection() { if (haptic) haptic.selectionChanged(); },
};

/** Opens a Stars invoice inside Telegram; returns false when that is not possible here. */
export function openInvoice(link, callback) {
  if (!insideTelegram || !versionAtLeast("6.1") || typeof webApp.openInvoice !== "function") return false;
  webApp.openInvoice(link, callback);
  return true;
}

export function openTelegramLink(url) {
  if (insideTelegram && /^https:\/\/t\.me\//.test(url) && typeof webApp.openTelegramLink === "function") {
    webApp.openTelegramLink(url);
  } else {
    window.open(url, "_blank", "noopener");
  }
}

/** Opens a link from a message the Telegram way (t.me links in Telegram itself, the rest in
 * its browser); returns false where the page should follow it itself. */
export function openLink(url) {
  if (!insideTelegram) return false;
  if (/^https:\/\/t\.me\//.test(url) && typeof webApp.openTelegramLink === "function") {
    webApp.openTelegramLink(url);
    return true;
  }
  if (/^https?:/.test(url) && typeof webApp.openLink === "function") {
    webApp.openLink(url);
    return true;
  }
  return false;
}

/** Call once at start-up: theme, buttons, ready/expand. */
export function setup() {
  applyTheme();
  systemDark.addEventListener("change", applyTheme);
  document.getElementById("back-button")?.addEventListener("click", () => backButton.press());
  if (webApp && insideTelegram) {
    webApp.onEvent("themeChanged", applyTheme);
    if (useNativeButtons) {
      webApp.BackButton.onClick(() => backButton.press());
      webApp.MainButton.onClick(() => mainButton.press());
    }
    webApp.ready();
    webApp.expand();
  }
  document.documentElement.dataset.telegram = insideTelegram ? "inside" : "outside";
  document.documentElement.dataset.nativeButtons = useNativeButtons ? "true" : "false";
}
