// REST client: session tokens from initData, Bearer auth, single-flight refresh, typed errors.

import { initData } from "./telegram.js";

const BASE = "/api/v1";
const TOKENS_KEY = "aimsg.tokens";

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || (status ? `http_${status}` : "network");
    this.body = body;
  }
}

function initDataHash() {
  try {
    return new URLSearchParams(initData).get("hash") || "";
  } catch {
    return "";
  }
}

let tokens = loadTokens();
let refreshing = null;
let exchanging = null;
const listeners = new Set();

function loadTokens() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null");
    // Tokens belong to the launch they came from: another initData (another user) starts afresh.
    return saved && saved.launch === initDataHash() ? saved : null;
  } catch {
    return null;
  }
}

function saveTokens(pair) {
  tokens = pair ? { access: pair.access_token, refresh: pair.refresh_token, launch: initDataHash() } : null;
  try {
    if (tokens) sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    else sessionStorage.removeItem(TOKENS_KEY);
  } catch { /* storage unavailable: tokens live in memory */ }
  if (pair && pair.user) for (const fn of listeners) fn(pair.user);
}

/** Called with the user of every token pair issued (sign-in and refresh). */
export function onUser(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

async function parseError(response) {
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  const detail = body && Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : null;
  return new ApiError(response.status, body && body.code, (body && (body.error || detail)) || response.statusText, body);
}

async function post(path, payload) {
  let response;
  try {
    response = await fetch(BASE + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
  } catch {
    throw new ApiError(0, "network", "No connection");
  }
  if (!response.ok) throw await parseError(response);
  return response.json();
}

/** Exchange the launch's initData for a session (single flight). */
export function signIn() {
  if (!initData) return Promise.reject(new ApiError(401, "init_data_missing", "Open this app from Telegram"));
  if (!exchanging) {
    exchanging = post("/auth/telegram", { init_data: initData })
      .then((pair) => { saveTokens(pair); return pair; })
      .finally(() => { exchanging = null; });
  }
  return exchanging;
}

/** Rotate the refresh token (single flight); falls back to a new sign-in when refused. */
function refresh() {
  if (!refreshing) {
    const current = tokens && tokens.refresh;
    refreshing = (async () => {
      if (current) {
        try {
          saveTokens(await post("/auth/refresh", { refresh_token: current }));
          return;
        } catch (error) {
          if (error.status !== 401) throw error;
        }
      }
      saveTokens(null);
      await signIn();
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

function tokenExpiresSoon(access) {
  try {
    const payload = JSON.parse(atob(access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" && payload.exp * 1000 - Date.now() < 30_000;
  } catch {
    return false;
  }
}

/** A usable access token (for the WebSocket's auth frame). */
export async function accessToken({ fresh = false } = {}) {
  if (refreshing) await refreshing;
  if (exchanging) await exchanging;
  if (!tokens) await signIn();
  else if (fresh || tokenExpiresSoon(tokens.access)) await refresh();
  return tokens.access;
}

const RETRY_CODES = new Set(["token_expired", "token_invalid", "token_revoked", "token_reused"]);

/**
 * request("GET", "/chats", {query: {limit: 50}})
 * request("POST", "/chats/1/messages", {body: {...}})
 * request("POST", "/media", {form: formData})
 */
export async function request(method, path, { body, query, form, signal } = {}) {
  let url = BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  for (let attempt = 0; ; attempt++) {
    const token = await accessToken();
    const headers = { Authorization: `Bearer ${token}` };
    let payload;
    if (form) payload = form;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload, signal });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(0, "network", "No connection");
    }
    if (response.status === 401 && attempt === 0) {
      const error = await parseError(response);
      if (RETRY_CODES.has(error.code) || !error.code) {
        await refresh();
        continue;
      }
      throw error;
    }
    if (!response.ok) throw await parseError(response);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }
}

export const api = {
  get: (path, query, options) => request("GET", path, { query, ...options }),
  post: (path, body, options) => request("POST", path, { body, ...options }),
  put: (path, body) => request("PUT", path, { body }),
  patch: (path, body) => request("PATCH", path, { body }),
  del: (path) => request("DELETE", path),
  upload: (file, kind, filename) => {
    const form = new FormData();
    if (kind) form.append("kind", kind);
    form.append("file", file, filename || file.name || "file");
    return request("POST", "/media", { form });
  },
};
