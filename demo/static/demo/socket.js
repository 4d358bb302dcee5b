// The realtime socket (docs/realtime.md): the access token in the handshake, the envelope,
// requests and their acks, heartbeats, and reconnecting with backoff.
//
// One Realtime per tab. `request(type, data)` sends a message with an id and resolves with the
// ack's data, or rejects with the error event's {code, message, details}. `send(type, data)`
// sends without an id (ICE candidates: only errors come back). Server events go to `onEvent`.
// After every (re)connection `onReady(ready, {reconnected})` runs: that is where the caller
// re-syncs (call.join again, fetch missed chat), since events sent while the socket was down
// are lost (the channel layer is at-most-once).

import { backoff, sleep } from "./api.js";

const REQUEST_TIMEOUT_MS = 15000;
// The protocol the server speaks, and the prefix of the subprotocol that carries the access token.
const PROTOCOL = "telehealth.v1";
const BEARER_PREFIX = "bearer.";
// Closed by the server for good reasons: sign in again rather than reconnecting silently.
const SIGNED_OUT_CODES = new Set([4401, 4403]);

export class RealtimeError extends Error {
  constructor({ code, message, details }) {
    super(message || code);
    this.code = code;
    this.details = details || {};
  }
}

export class Realtime {
  constructor(api, { url, onEvent = () => {}, onReady = () => {}, onState = () => {}, onSignedOut = () => {} } = {}) {
    this.api = api;
    this.url = url;
    this.onEvent = onEvent;
    this.onReady = onReady;
    this.onState = onState;
    this.onSignedOut = onSignedOut;
    this.socket = null;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.nextId = 1;
    this.stopped = true;
    this.connections = 0;
    this.heartbeat = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect(0);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.rejectPending("stopped");
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.ready;
  }

  // The access token rides in the handshake as a subprotocol, beside the protocol's name, which
  // the server answers with (it never echoes the token). A 4401 before connection.ready means
  // the token expired or was revoked: refresh once and try again, then give up.
  async connect(attempt, refreshed = false) {
    if (this.stopped) return;
    this.ready = false;
    this.onState("connecting");
    if (!this.api.access) return this.signedOut("Your sign-in has expired.");
    const socket = new WebSocket(this.url, [PROTOCOL, BEARER_PREFIX + this.api.access]);
    this.socket = socket;
    let retryAfter = 0;
    let loggedOff = null;
    let wasReady = false;
    socket.onmessage = (message) => {
      let envelope;
      try {
        envelope = JSON.parse(message.data);
      } catch {
        return;
      }
      const { type, data = {}, id } = envelope;
      if (type === "connection.ready") {
        attempt = 0;
        wasReady = true;
        this.ready = true;
        this.startHeartbeat(socket, data.heartbeat_seconds || 25);
        this.onState("online");
        const reconnected = this.connections++ > 0;
        Promise.resolve(this.onReady(data, { reconnected })).catch((error) => console.error("re-sync failed", error));
        return;
      }
      if (type === "error" && data.details && data.details.retry_after) retryAfter = data.details.retry_after;
      if (type === "error" && data.code === "LOGGED_OFF") loggedOff = data.details.reason;
      if ((type === "ack" || type === "error") && id !== undefined && this.pending.has(String(id))) {
        const waiter = this.pending.get(String(id));
        this.pending.delete(String(id));
        clearTimeout(waiter.timer);
        if (type === "ack") waiter.resolve(data);
        else waiter.reject(new RealtimeError(data));
        return;
      }
      if (type === "error") {
        console.warn("socket error", data.code, data.message);
        return;
      }
      try {
        this.onEvent(type, data);
      } catch (error) {
        console.error("event handler failed", type, error);
      }
    };
    socket.onclose = async ({ code }) => {
      if (this.socket === socket) this.socket = null;
      clearInterval(this.heartbeat);
      this.ready = false;
      this.rejectPending("disconnected");
      if (this.stopped) return;
      if (code === 4401 && !wasReady && !refreshed) {
        try {
          await this.api.refresh();
        } catch {
          return this.signedOut("Your sign-in has expired.");
        }
        return this.connect(attempt, true);
      }
      if (SIGNED_OUT_CODES.has(code)) {
        return this.signedOut(loggedOff ? `Signed out (${loggedOff}).` : "Signed out by the server.");
      }
      // 4503 (lost events: re-sync), 1013 (busy), 4429 (too many connections), 1006 (network).
      this.onState("reconnecting");
      await sleep(backoff(attempt, retryAfter));
      this.connect(attempt + 1);
    };
  }

  signedOut(reason) {
    this.stop();
    this.onState("offline");
    this.onSignedOut(reason);
  }

  // presence.heartbeat keeps the connection counted; {alive: false} means the server has
  // already dropped it, so reconnect at once.
  startHeartbeat(socket, seconds) {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(async () => {
      if (socket !== this.socket) return;
      try {
        const { alive } = await this.request("presence.heartbeat", {});
        if (!alive) socket.close(4000);
      } catch {
        // the close handler reconnects
      }
    }, seconds * 1000);
  }

  request(type, data = {}, { timeout = REQUEST_TIMEOUT_MS } = {}) {
    if (!this.open) return Promise.reject(new RealtimeError({ code: "DISCONNECTED", message: "Not connected." }));
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RealtimeError({ code: "TIMEOUT", message: `No answer to ${type}.` }));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ type, data, id }));
    });
  }

  send(type, data = {}) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify({ type, data }));
    return true;
  }

  rejectPending(code) {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new RealtimeError({ code: code.toUpperCase(), message: "The connection closed." }));
      this.pending.delete(id);
    }
  }
}
