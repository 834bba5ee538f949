// The one WebSocket: bare connect, auth frame, resume after every (re)connect, backoff with
// jitter, an application ping to notice dead links, and no polling.

import { accessToken } from "./api.js";

const PING_EVERY_MS = 15_000;
const PONG_TIMEOUT_MS = 8_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_TOKEN_EXPIRED = 4002; // the access token ran out: refresh, reconnect at once, resume
const CLOSE_SESSION_ENDED = 4003; // logged out elsewhere, or the refresh token was reused
const NEEDS_FRESH_TOKEN = new Set([CLOSE_UNAUTHORIZED, CLOSE_TOKEN_EXPIRED, CLOSE_SESSION_ENDED]);

export class Socket {
  /**
   * onFrame(frame): every server frame after connection_established.
   * onOpen(): right after connection_established; returns the resume frame to send first (or null).
   * onState(state): "connecting" | "online" | "offline".
   */
  constructor({ onFrame, onOpen, onState }) {
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onState = onState;
    this.ws = null;
    this.state = "offline";
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.freshToken = false;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.drop("offline"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.ws) this.reconnectNow();
    });
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  get online() {
    return this.state === "online" && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  async connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    this.setState("connecting");
    let token;
    try {
      token = await accessToken({ fresh: this.freshToken });
      this.freshToken = false;
    } catch (error) {
      this.scheduleReconnect();
      return;
    }
    if (this.ws || this.stopped) return;
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token }));
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
    ws.onerror = () => { /* onclose follows */ };
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
    if (frame.type === "connection_established") {
      this.attempt = 0;
      const resume = this.onOpen();
      if (resume) ws.send(JSON.stringify(resume));
      this.setState("online");
      this.startPing();
      this.onFrame(frame);
      return;
    }
    if (frame.type === "pong") return;
    this.onFrame(frame);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.stopPing();
    if (NEEDS_FRESH_TOKEN.has(code)) this.freshToken = true;
    if (code === CLOSE_TOKEN_EXPIRED) this.attempt = 0;
    this.onFrame({ type: "socket_closed", code });
    if (!this.stopped) this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setState("offline");
    clearTimeout(this.retryTimer);
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect without waiting for the backoff (the network came back, the page is visible). */
  reconnectNow() {
    if (this.ws) return;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** Close the current socket (a dead link); the usual reconnect follows. */
  drop(reason) {
    const ws = this.ws;
    if (!ws) {
      if (reason === "offline") this.setState("offline");
      return;
    }
    try { ws.close(4000, reason); } catch { /* already closing */ }
    this.closed(ws, 4000);
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.online) return;
      this.ws.send('{"type":"ping"}');
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.drop("ping timeout"), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = this.pongTimer = null;
  }

  /** Send a frame if the socket is up; false otherwise (callers fall back to REST). */
  send(frame) {
    if (!this.online) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }
}
