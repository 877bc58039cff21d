// Signaling: the connection to the rtckit hub. JSON messages over a
// WebSocket (subprotocol "json"), a ping every PING_INTERVAL_MS, reconnect
// with exponential backoff and, once the hub issued a session token, resume
// of the registered name after a reconnect.

/** How often a ping is sent while the socket is open. */
export const PING_INTERVAL_MS = 15000;
/** First and largest delay before a reconnect attempt. */
export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 8000;

/** The WebSocket close code of a connection whose session was resumed elsewhere. */
export const STATUS_REPLACED = 4001;

/**
 * The hub's WebSocket URL for a page served from location. An access token
 * in the page's own query (?token=) is passed on to the hub.
 */
export function hubURL(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = new URLSearchParams(location.search).get("token");
  return `${scheme}//${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

export class Signaling {
  /** "connecting", "open", "reconnecting" or "closed". */
  state = "connecting";
  /** The connection id the hub assigned, the accepted name, the wanted name. */
  id = null;
  name = null;
  wanted = null;
  /** Session resume token and how long the hub keeps it, from "session". */
  token = null;
  resumeMs = 0;
  iceServers = [];
  rttMs = null;
  reconnects = 0;

  #url;
  #ws = null;
  #handlers = new Map();
  #attempt = 0;
  #pingTimer = 0;
  #retryTimer = 0;
  #stopped = false;

  constructor(url) {
    this.#url = url;
  }

  /** Registers fn for messages of type (or "*" for all, "state" for state changes). */
  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, []);
    this.#handlers.get(type).push(fn);
  }

  #emit(type, msg) {
    for (const fn of [...(this.#handlers.get(type) ?? []), ...(type === "state" ? [] : this.#handlers.get("*") ?? [])]) {
      try {
        fn(msg);
      } catch (err) {
        console.error(`signaling: ${type} handler:`, err);
      }
    }
  }

  #setState(state) {
    this.state = state;
    this.#emit("state", state);
  }

  connect() {
    this.#stopped = false;
    const ws = new WebSocket(this.#url, "json");
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      // A resume must be the first message on the new socket.
      if (this.token) this.#sendNow({ type: "resume", token: this.token });
      this.#setState("open");
      this.#pingTimer = setInterval(() => this.send({ type: "ping", ts: Date.now() }), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn("signaling: not JSON:", ev.data);
        return;
      }
      if (msg && typeof msg.type === "string") this.#handle(msg);
    };
    ws.onclose = (ev) => {
      clearInterval(this.#pingTimer);
      if (this.#ws !== ws) return;
      this.#ws = null;
      // Another tab resumed this session: reconnecting would take it back.
      if (ev.code === STATUS_REPLACED) this.#stopped = true;
      if (this.#stopped) {
        this.#setState("closed");
        return;
      }
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt);
      this.#attempt++;
      this.#setState("reconnecting");
      this.#retryTimer = setTimeout(() => {
        this.reconnects++;
        this.connect();
      }, delay * (0.75 + Math.random() / 2));
    };
  }

  #handle(msg) {
    switch (msg.type) {
      case "id":
        this.id = msg.id;
        // Without a token to resume, (re)register the wanted name.
        if (!this.token && this.wanted) this.#sendUsername();
        break;
      case "ice-servers":
        if (Array.isArray(msg.iceServers)) this.iceServers = msg.iceServers;
        break;
      case "rejectusername":
        // The hub assigned a unique variant of the wanted name.
        if (msg.name) this.name = this.wanted = msg.name;
        break;
      case "session":
        this.token = msg.token ?? null;
        this.resumeMs = msg.resume_ms ?? 0;
        if (msg.name) this.wanted = msg.name;
        this.name = this.wanted;
        break;
      case "userlist":
        if (!this.name && this.wanted && msg.users?.includes(this.wanted)) this.name = this.wanted;
        break;
      case "pong":
        if (typeof msg.ts === "number") this.rttMs = Date.now() - msg.ts;
        break;
      case "error":
        if (msg.ref === "resume" || /resume|token|session/.test(msg.code ?? "")) {
          // The session expired: register the name afresh.
          this.token = null;
          this.name = null;
          if (this.wanted) this.#sendUsername();
        }
        break;
    }
    this.#emit(msg.type, msg);
  }

  #sendUsername() {
    this.#sendNow({ type: "username", name: this.wanted, date: Date.now(), id: this.id });
  }

  /** Asks the hub for name; the accepted name appears in this.name. */
  register(name) {
    this.wanted = name;
    this.name = null;
    this.token = null;
    if (this.state === "open" && this.id !== null) this.#sendUsername();
  }

  #sendNow(msg) {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  /** Sends msg if the socket is open and reports whether it did. */
  send(msg) {
    return this.#sendNow(msg);
  }

  /** Closes the socket as if the network dropped it; a reconnect follows. */
  drop() {
    this.#ws?.close();
  }

  /** Closes the socket for good. */
  close() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#ws?.close();
  }
}
