// The call page: wires the hub connection (signaling.js), the call
// (call.js), file transfer (files.js) and the DOM (ui.js), and exposes a
// small test hook as window.rtckit.

import { Signaling, hubURL } from "./signaling.js";
import { Call } from "./call.js";
import { LABEL, sendFile, receiveFile } from "./files.js";
import { el, setStatus, renderUsers, addMessage, addTransfer, unescapeHTML } from "./ui.js";

/** How often the route and connection state are refreshed during a call. */
const STATS_INTERVAL_MS = 1000;

const sig = new Signaling(hubURL(location));

/** The page's state. call is null or {peer, phase, call, offer, candidates}. */
const app = {
  users: [],
  messages: [],
  call: null,
  localStream: null,
  muted: false,
  cameraOff: false,
  stats: null,
  sent: [],
  received: [],
  errors: [],
  lastHangup: null,
  notice: "", // the last event worth telling, shown after the connection state
};

function fail(where, err) {
  const text = `${where}: ${err?.message ?? err}`;
  console.error(text);
  app.errors.push(text);
  app.notice = text;
  render();
}

// ---- rendering ----

function render() {
  const name = sig.name;
  const c = app.call;
  el.me.hidden = !name;
  el.me.textContent = name ? `You are ${name}.` : "";
  el.registerForm.hidden = !!name;
  el.chatInput.disabled = el.chatSend.disabled = !name || sig.state !== "open";
  renderUsers(app.users, name, !!c, startCall);

  const ringing = c?.phase === "incoming";
  if (ringing && el.incoming.hidden) {
    el.incomingText.textContent = `${c.peer} is calling you.`;
    el.incoming.hidden = false;
    el.answer.focus();
  } else if (!ringing) {
    el.incoming.hidden = true;
  }
  const inCall = !!c && c.phase !== "incoming";
  el.hangup.disabled = !inCall;
  el.mute.disabled = el.camera.disabled = !inCall;
  el.mute.setAttribute("aria-pressed", String(app.muted));
  el.mute.textContent = app.muted ? "Unmute" : "Mute";
  el.camera.setAttribute("aria-pressed", String(app.cameraOff));
  el.camera.textContent = app.cameraOff ? "Camera on" : "Camera off";
  el.fileSend.disabled = !c?.call || c.call.pc.connectionState !== "connected";
  el.callState.textContent = c ? `${c.phase} — ${c.peer}` : "idle";
  el.remoteCaption.textContent = c ? c.peer : "Remote";
  const pc = c?.call?.pc;
  el.connState.textContent = pc ? `${pc.connectionState} (ICE ${pc.iceConnectionState})` : "–";
  const s = app.stats;
  el.route.textContent = pc && s?.localCandidateType
    ? `${s.localCandidateType} → ${s.remoteCandidateType} over ${s.protocol}${s.rttMs != null ? `, ${s.rttMs} ms` : ""}`
    : "–";

  const conn = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", closed: "Disconnected" }[sig.state];
  setStatus([name ? `${conn} as ${name}` : conn, app.notice].filter(Boolean).join(" — "));
}

// ---- hub messages ----

sig.on("state", render);
sig.on("*", render);

sig.on("userlist", (msg) => {
  app.users = Array.isArray(msg.users) ? msg.users.map(String) : [];
});

sig.on("message", (msg) => {
  const m = { name: String(msg.name ?? ""), text: unescapeHTML(msg.text ?? ""), date: msg.date };
  app.messages.push(m);
  addMessage(m);
});

sig.on("video-offer", (msg) => {
  const peer = msg.name;
  const c = app.call;
  if (c?.peer === peer) {
    if (c.call) c.call.handleDescription(msg.sdp).catch((e) => fail("offer", e));
    else c.offer = msg.sdp;
    return;
  }
  if (c) {
    // Busy: decline the second caller.
    sig.send({ type: "hang-up", name: sig.name, target: peer });
    return;
  }
  app.call = { peer, phase: "incoming", call: null, offer: msg.sdp, candidates: [] };
  app.notice = `${peer} is calling`;
});

sig.on("video-answer", (msg) => {
  const c = app.call;
  if (c?.peer !== msg.name || !c.call) return;
  c.call.handleDescription(msg.sdp).catch((e) => fail("answer", e));
});

sig.on("new-ice-candidate", (msg) => {
  const c = app.call;
  if (!c || (msg.name && msg.name !== c.peer) || !msg.candidate) return;
  if (c.call) c.call.handleCandidate(msg.candidate).catch((e) => fail("candidate", e));
  else c.candidates.push(msg.candidate);
});

sig.on("hang-up", (msg) => {
  if (app.call && (!msg.name || msg.name === app.call.peer)) endCall(`${app.call.peer} hung up`);
});

sig.on("error", (msg) => {
  if (msg.code === "unknown-target" && app.call && msg.target === app.call.peer) {
    endCall(`${msg.target} is not online`);
    return;
  }
  app.errors.push(`${msg.code}: ${msg.message ?? ""}`);
});

// ---- calls ----

async function localStream() {
  if (!app.localStream) {
    app.localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    el.localVideo.srcObject = app.localStream;
    applyTrackToggles();
  }
  return app.localStream;
}

function applyTrackToggles() {
  for (const t of app.localStream?.getAudioTracks() ?? []) t.enabled = !app.muted;
  for (const t of app.localStream?.getVideoTracks() ?? []) t.enabled = !app.cameraOff;
}

function newCall(peer) {
  return new Call({
    self: sig.name,
    peer,
    iceServers: sig.iceServers,
    send: (msg) => sig.send(msg),
    onchange: () => {
      const c = app.call;
      if (c?.call?.pc.connectionState === "connected" && c.phase !== "active") {
        c.phase = "active";
        app.notice = `in a call with ${c.peer}`;
      }
      render();
    },
    onstream: showRemote,
    ondatachannel: (ch) => {
      if (ch.label === LABEL) acceptFile(ch);
    },
    onfailed: () => {
      if (app.call?.peer === peer) hangup("connection failed");
    },
  });
}

function showRemote(stream) {
  const v = el.remoteVideo;
  if (v.srcObject !== stream) v.srcObject = stream;
  v.play().catch(() => {
    // Autoplay with sound may need a user gesture: play muted meanwhile.
    v.muted = true;
    el.unmuteRemote.hidden = false;
    v.play().catch(() => {});
  });
}

/** Calls peer. */
async function startCall(peer) {
  if (!sig.name) throw new Error("register a name first");
  if (app.call) throw new Error(`already in a call with ${app.call.peer}`);
  if (peer === sig.name) throw new Error("cannot call yourself");
  const c = { peer, phase: "calling", call: null, offer: null, candidates: [] };
  app.call = c;
  app.notice = `calling ${peer}…`;
  render();
  try {
    const stream = await localStream();
    if (app.call !== c) return;
    c.call = newCall(peer);
    c.call.addStream(stream); // negotiationneeded sends the offer
  } catch (err) {
    endCall("call failed");
    fail("call", err);
    throw err;
  }
  render();
}

/** Answers the incoming call. */
async function answerCall() {
  const c = app.call;
  if (c?.phase !== "incoming") throw new Error("no incoming call");
  c.phase = "answering";
  render();
  try {
    const stream = await localStream();
    if (app.call !== c) return;
    c.call = newCall(c.peer);
    await c.call.accept(c.offer, stream);
    for (const cand of c.candidates.splice(0)) c.call.handleCandidate(cand).catch((e) => fail("candidate", e));
  } catch (err) {
    hangup();
    fail("answer", err);
    throw err;
  }
  render();
}

/** Declines the incoming call: a hang-up to the caller. */
function declineCall() {
  const c = app.call;
  if (c?.phase !== "incoming") return;
  sig.send({ type: "hang-up", name: sig.name, target: c.peer });
  endCall("declined");
}

/** Hangs up the current call, telling the peer. */
function hangup(reason = "hung up") {
  const c = app.call;
  if (!c) return;
  sig.send({ type: "hang-up", name: sig.name, target: c.peer });
  endCall(reason);
}

// Leaving the page ends the call for the peer too.
window.addEventListener("pagehide", () => hangup("left the page"));

function endCall(reason) {
  const c = app.call;
  if (!c) return;
  app.call = null;
  app.lastHangup = reason;
  c.call?.close();
  for (const t of app.localStream?.getTracks() ?? []) t.stop();
  app.localStream = null;
  app.stats = null;
  app.muted = app.cameraOff = false;
  el.localVideo.srcObject = null;
  el.remoteVideo.srcObject = null;
  el.unmuteRemote.hidden = true;
  app.notice = reason;
  render();
}

setInterval(async () => {
  const call = app.call?.call;
  if (!call) return;
  try {
    app.stats = await call.stats();
  } catch {
    return;
  }
  render();
}, STATS_INTERVAL_MS);

// ---- files ----

/** Sends {name, mime, bytes} to the peer of the current call. */
async function shareFile(file) {
  const call = app.call?.call;
  if (!call) throw new Error("not in a call");
  const row = addTransfer(`→ ${file.name} (${file.bytes.byteLength} bytes)`);
  const rec = { name: file.name, size: file.bytes.byteLength, sent: 0, done: false, ok: null, sha256: null };
  app.sent.push(rec);
  try {
    const res = await sendFile((label) => call.createDataChannel(label), file, (sent, size) => {
      rec.sent = sent;
      row.progress(sent, size);
    });
    Object.assign(rec, { done: true, ok: res.ok, sha256: res.sha256, error: res.error ?? null });
    row.finish(res.ok ? `sent, SHA-256 ${res.sha256.slice(0, 16)}… verified by peer` : `failed: ${res.error ?? "hash mismatch"}`, res.ok);
    return { ok: res.ok, sha256: res.sha256, error: res.error ?? null, pauses: res.pauses };
  } catch (err) {
    Object.assign(rec, { done: true, ok: false, error: String(err?.message ?? err) });
    row.finish(`failed: ${rec.error}`, false);
    throw err;
  }
}

function acceptFile(channel) {
  let row = null;
  const rec = { name: "", size: 0, received: 0, done: false, ok: null, sha256: null, expected: null, mime: "" };
  app.received.push(rec);
  receiveFile(channel, {
    onheader: (h) => {
      Object.assign(rec, { name: h.name, size: h.size, mime: h.mime, expected: h.sha256 });
      row = addTransfer(`← ${h.name} (${h.size} bytes)`);
    },
    onprogress: (received, size) => {
      rec.received = received;
      row?.progress(received, size);
    },
  }).then(
    (res) => {
      Object.assign(rec, { done: true, ok: res.ok, sha256: res.sha256, error: res.error ?? null, received: res.size });
      row ??= addTransfer(`← ${res.name}`);
      const link = res.ok ? { href: URL.createObjectURL(new Blob([res.bytes], { type: res.mime || "application/octet-stream" })), name: res.name } : null;
      row.finish(res.ok ? `received, SHA-256 ${res.sha256.slice(0, 16)}… verified` : `failed: ${res.error}`, res.ok, link);
    },
    (err) => {
      Object.assign(rec, { done: true, ok: false, error: String(err?.message ?? err) });
      row?.finish(`failed: ${rec.error}`, false);
    },
  );
}

/** Converts what the test hook accepts into bytes. */
async function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof Blob) return new Uint8Array(await data.arrayBuffer());
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError("file data must be bytes, a Blob or a string");
}

// ---- DOM events ----

el.registerForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = el.nameInput.value.trim();
  if (name) sig.register(name);
  render();
});

el.chatForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = el.chatInput.value;
  if (text && sendChat(text)) el.chatInput.value = "";
});

function sendChat(text) {
  return sig.send({ type: "message", text, id: sig.id, date: Date.now() });
}

el.answer.addEventListener("click", () => answerCall().catch(() => {}));
el.decline.addEventListener("click", declineCall);
el.hangup.addEventListener("click", () => hangup());
el.mute.addEventListener("click", () => setMuted(!app.muted));
el.camera.addEventListener("click", () => setCameraOff(!app.cameraOff));
el.unmuteRemote.addEventListener("click", () => {
  el.remoteVideo.muted = false;
  el.remoteVideo.play().catch(() => {});
  el.unmuteRemote.hidden = true;
});

el.fileForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = el.fileInput.files?.[0];
  if (!f) return;
  try {
    await shareFile({ name: f.name, mime: f.type, bytes: new Uint8Array(await f.arrayBuffer()) });
    el.fileInput.value = "";
  } catch (err) {
    fail("file", err);
  }
});

function setMuted(on) {
  app.muted = !!on;
  applyTrackToggles();
  render();
}

function setCameraOff(on) {
  app.cameraOff = !!on;
  applyTrackToggles();
  render();
}

// ---- test hook ----

const copyFile = ({ bytes, ...rest }) => rest;

window.rtckit = Object.freeze({
  /** A JSON snapshot of the page. */
  state: () => ({
    signaling: sig.state,
    id: sig.id,
    name: sig.name,
    hasSession: !!sig.token,
    reconnects: sig.reconnects,
    rttMs: sig.rttMs,
    users: [...app.users],
    messages: app.messages.map((m) => ({ ...m })),
    call: app.call
      ? {
          peer: app.call.peer,
          phase: app.call.phase,
          polite: app.call.call?.polite ?? null,
          connectionState: app.call.call?.pc.connectionState ?? null,
          iceConnectionState: app.call.call?.pc.iceConnectionState ?? null,
          signalingState: app.call.call?.pc.signalingState ?? null,
          localCandidateType: app.stats?.localCandidateType ?? null,
        }
      : null,
    muted: app.muted,
    cameraOff: app.cameraOff,
    lastHangup: app.lastHangup,
    errors: [...app.errors],
  }),
  register: (name) => sig.register(name),
  sendChat: (text) => sendChat(text),
  call: (name) => startCall(name),
  answer: () => answerCall(),
  decline: () => declineCall(),
  hangup: () => hangup(),
  setMuted,
  setCameraOff,
  /** The local tracks: [{kind, enabled, readyState}]. */
  localTracks: () => (app.localStream?.getTracks() ?? []).map((t) => ({ kind: t.kind, enabled: t.enabled, readyState: t.readyState })),
  /** getStats of the current call, or null. */
  stats: async () => (app.call?.call ? app.call.call.stats() : null),
  framesDecoded: async () => (app.call?.call ? (await app.call.call.stats()).framesDecoded : 0),
  /** The remote video element's playback position and size. */
  remoteVideo: () => ({
    currentTime: el.remoteVideo.currentTime,
    width: el.remoteVideo.videoWidth,
    height: el.remoteVideo.videoHeight,
    paused: el.remoteVideo.paused,
  }),
  sendFile: async (name, data, mime = "application/octet-stream") => shareFile({ name, mime, bytes: await toBytes(data) }),
  sentFiles: () => app.sent.map((r) => ({ ...r })),
  receivedFiles: () => app.received.map(copyFile),
  /** Drops the hub connection as a network failure would. */
  dropSignaling: () => sig.drop(),
  restartIce: () => app.call?.call?.restartIce(),
});

sig.connect();
render();
