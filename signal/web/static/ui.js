// UI: the page's DOM. Everything that comes from the network is inserted
// as text (textContent), never as HTML.

const $ = (id) => document.getElementById(id);

export const el = {
  status: $("status"),
  registerForm: $("register-form"),
  nameInput: $("name-input"),
  me: $("me"),
  users: $("users"),
  incoming: $("incoming"),
  incomingText: $("incoming-text"),
  answer: $("answer"),
  decline: $("decline"),
  remoteVideo: $("remote-video"),
  remoteCaption: $("remote-caption"),
  localVideo: $("local-video"),
  hangup: $("hangup"),
  mute: $("mute"),
  camera: $("camera"),
  unmuteRemote: $("unmute-remote"),
  callState: $("call-state"),
  connState: $("conn-state"),
  route: $("route"),
  fileForm: $("file-form"),
  fileInput: $("file-input"),
  fileSend: $("file-send"),
  transfers: $("transfers"),
  messages: $("messages"),
  chatForm: $("chat-form"),
  chatInput: $("chat-input"),
  chatSend: $("chat-send"),
};

const entities = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&#39;": "'", "&#34;": '"', "&quot;": '"', "&apos;": "'" };

/** Undoes the hub's HTML escaping of chat text, for display as text. */
export function unescapeHTML(s) {
  return String(s).replace(/&(?:lt|gt|amp|quot|apos|#39|#34);/g, (m) => entities[m]);
}

/** Sets the status line (a live region: only changes are announced). */
export function setStatus(text) {
  if (el.status.textContent !== text) el.status.textContent = text;
}

let usersKey = "";

/**
 * Renders the user list; onCall(name) is called when a user is chosen. The
 * list is rebuilt only when it changed, so keyboard focus stays put.
 */
export function renderUsers(users, self, busy, onCall) {
  const key = JSON.stringify([users, self, busy]);
  if (key === usersKey) return;
  usersKey = key;
  el.users.replaceChildren(
    ...users.map((name) => {
      const li = document.createElement("li");
      if (name === self) {
        li.className = "self";
        li.textContent = `${name} (you)`;
      } else {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = name;
        b.setAttribute("aria-label", `Call ${name}`);
        b.disabled = !self || busy;
        b.addEventListener("click", () => onCall(name));
        li.append(b);
      }
      return li;
    }),
  );
}

/** Appends one chat message {name, text, date}. */
export function addMessage(msg) {
  const li = document.createElement("li");
  const t = document.createElement("time");
  const d = new Date(typeof msg.date === "number" ? msg.date : Date.now());
  t.dateTime = d.toISOString();
  t.textContent = d.toLocaleTimeString();
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = msg.name ?? "?";
  const text = document.createElement("span");
  text.textContent = msg.text;
  li.append(t, from, text);
  el.messages.append(li);
  el.messages.scrollTop = el.messages.scrollHeight;
}

/** Adds a transfer row and returns an updater (done, total, note). */
export function addTransfer(label) {
  const li = document.createElement("li");
  const name = document.createElement("div");
  name.textContent = label;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", label);
  const note = document.createElement("div");
  li.append(name, bar, note);
  el.transfers.append(li);
  return {
    progress(done, total) {
      bar.max = total || 1;
      bar.value = total ? done : 1;
    },
    finish(text, ok, link) {
      note.textContent = text;
      note.className = ok ? "" : "bad";
      if (link) {
        const a = document.createElement("a");
        a.href = link.href;
        a.download = link.name;
        a.textContent = "Save";
        note.append(" ", a);
      }
    },
  };
}
