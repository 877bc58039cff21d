// bench.js is a minimal client of rtckit's hub protocol (docs/protocol.md):
// id, username, userlist, video-offer, video-answer, new-ice-candidate and
// hang-up, with trickle ICE. One tab answers every offer (callee); the other
// places calls (caller) and times them. Every caller time is in
// milliseconds since just before the offer is sent (performance.now()).
//
// File transfers follow docs/file-transfer.md: one channel labelled "file",
// a JSON header with the SHA-256, 16 KiB binary chunks, a JSON "eof", and
// the receiver's "file-ack"; the sender pauses above 1 MiB buffered until
// bufferedamountlow (threshold 256 KiB).

const CHUNK_SIZE = 16 * 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
const MAX_SIZE = 512 * 1024 * 1024;

let ws = null;
let self = "";
let iceServers = [];
let pc = null; // the current call, on either side
let remoteSet = false;
let pending = []; // remote candidates that came before the remote description
// chain applies one call's signaling messages in order. Every call starts
// a new one: an operation still queued on a closed connection never
// settles, and would hold up the next call's messages.
let chain = Promise.resolve();
let local = null; // the fake camera and microphone while prepared
let run = null; // the caller's current measurement
let lastReceive = null; // the callee's last file reception
let testFile = null; // the caller's generated file, kept between runs

function send(msg) {
  ws.send(JSON.stringify(msg));
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// connect opens the hub connection, registers name and resolves once the
// userlist shows the registered name.
export function connect(url, name) {
  return withTimeout(new Promise((resolve, reject) => {
    ws = new WebSocket(url, "json");
    self = name;
    ws.onerror = () => reject(new Error("hub connection failed"));
    ws.onclose = () => console.warn("hub connection closed");
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      switch (msg.type) {
        case "id":
          send({ type: "username", name, date: Date.now(), id: msg.id });
          break;
        case "ice-servers":
          iceServers = msg.iceServers || [];
          break;
        case "rejectusername":
          self = msg.name;
          break;
        case "userlist":
          if (msg.users.includes(self)) resolve({ name: self, ice_servers: iceServers.length });
          break;
        case "video-offer":
          chain = Promise.resolve();
          queue(() => answer(msg));
          break;
        case "video-answer":
          run?.mark("answer");
          queue(() => applyRemote(msg.sdp));
          break;
        case "new-ice-candidate":
          run?.mark("first_remote_candidate");
          queue(() => addCandidate(msg.candidate));
          break;
        case "hang-up":
          closeCall();
          break;
        case "error":
          console.warn("hub error", JSON.stringify(msg));
          break;
      }
    };
  }), 10000, "connect");
}

function queue(fn) {
  chain = chain.then(fn).catch((err) => console.warn("signaling:", err));
}

async function applyRemote(sdp) {
  if (!pc) return;
  await pc.setRemoteDescription(sdp);
  remoteSet = true;
  for (const c of pending) await addIceCandidate(c);
  pending = [];
}

async function addCandidate(c) {
  if (!pc || !c) return;
  if (!remoteSet) pending.push(c);
  else await addIceCandidate(c);
}

// addIceCandidate ignores a candidate the connection refuses: a late one
// of the previous call carries that call's ICE username fragment.
async function addIceCandidate(c) {
  try {
    await pc.addIceCandidate(c);
  } catch (err) {
    console.debug("ignoring a remote candidate:", err.message);
  }
}

// newCall starts a connection to peer that trickles its candidates.
function newCall(peer) {
  closeCall();
  pc = new RTCPeerConnection({ iceServers });
  remoteSet = false;
  pending = [];
  pc.onicecandidate = (e) => {
    if (e.candidate) send({ type: "new-ice-candidate", target: peer, candidate: e.candidate.toJSON() });
  };
  return pc;
}

function closeCall() {
  if (pc) pc.close();
  pc = null;
  document.getElementById("videos").replaceChildren();
}

// answer is the callee: it answers every offer, with the fake devices when
// prepared, and receives files.
async function answer(msg) {
  const conn = newCall(msg.name);
  conn.ondatachannel = (e) => {
    if (e.channel.label === "file") receiveFile(e.channel);
  };
  await applyRemote(msg.sdp);
  if (local) for (const t of local.getTracks()) conn.addTrack(t, local);
  await conn.setLocalDescription(await conn.createAnswer());
  send({ type: "video-answer", target: msg.name, sdp: conn.localDescription });
}

// prepareMedia opens the fake camera (320x240, 30 fps, like rtckit's test
// clip) and microphone; releaseMedia stops them, so that an idle tab costs
// no CPU while rtckit is measured.
export async function prepareMedia() {
  local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240, frameRate: 30 } });
  return local.getTracks().length;
}

export function releaseMedia() {
  if (local) for (const t of local.getTracks()) t.stop();
  local = null;
  return true;
}

// newRun returns a measurement that records the first time of each mark.
function newRun() {
  const r = { t0: performance.now(), marks: {} };
  r.mark = (name) => {
    if (!(name in r.marks)) r.marks[name] = performance.now() - r.t0;
  };
  return r;
}

// selectedPath describes the selected candidate pair's local side.
async function selectedPath(conn) {
  const stats = await conn.getStats();
  for (const s of stats.values()) {
    if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
    const pair = stats.get(s.selectedCandidatePairId);
    const l = pair && stats.get(pair.localCandidateId);
    const r = pair && stats.get(pair.remoteCandidateId);
    if (l && r) return `${l.candidateType} ${l.protocol} ${l.address} → ${r.candidateType} ${r.protocol} ${r.address}`;
  }
  return "";
}

// setupRun calls target with the fake devices and resolves with the times
// of answer, first remote candidate, ICE connected, DTLS connected
// (connectionState), first RTP (the first remote track unmuted), first
// video frame (requestVideoFrameCallback on a playing <video>) and first
// decoded frame (getStats framesDecoded > 0, polled every pollMs; the time
// the poll that saw it started).
export async function setupRun({ target, timeoutMs = 30000, pollMs = 5 }) {
  if (!local) throw new Error("prepareMedia first");
  chain = Promise.resolve();
  const conn = newCall(target);
  let r = null;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const want = ["ice_connected", "dtls_connected", "first_rtp", "first_frame", "first_decoded"];
  const mark = (name) => {
    if (!r) return;
    r.mark(name);
    if (want.every((n) => n in r.marks)) done();
  };
  conn.oniceconnectionstatechange = () => {
    if (["connected", "completed"].includes(conn.iceConnectionState)) mark("ice_connected");
  };
  conn.onconnectionstatechange = () => {
    if (conn.connectionState === "connected") mark("dtls_connected");
  };
  conn.ontrack = (e) => {
    if (!e.track.muted) mark("first_rtp");
    e.track.addEventListener("unmute", () => mark("first_rtp"), { once: true });
    if (e.track.kind !== "video") return;
    const v = document.createElement("video");
    v.muted = true;
    v.autoplay = true;
    v.playsInline = true;
    v.srcObject = new MediaStream([e.track]);
    document.getElementById("videos").append(v);
    v.requestVideoFrameCallback(() => mark("first_frame"));
    v.play().catch(() => {});
  };
  const poll = setInterval(async () => {
    if (!r || "first_decoded" in r.marks) return;
    const at = performance.now() - r.t0;
    const stats = await conn.getStats();
    for (const s of stats.values()) {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0 && !("first_decoded" in r.marks)) {
        r.marks.first_decoded = at;
        mark("first_decoded");
      }
    }
  }, pollMs);
  for (const t of local.getTracks()) conn.addTrack(t, local);
  await conn.setLocalDescription(await conn.createOffer());
  r = run = newRun();
  send({ type: "video-offer", target, sdp: conn.localDescription });
  let timedOut = false;
  try {
    await withTimeout(finished, timeoutMs, "setup");
  } catch {
    timedOut = true;
  }
  clearInterval(poll);
  const path = await selectedPath(conn);
  run = null;
  closeCall();
  send({ type: "hang-up", target });
  return { ...r.marks, timed_out: timedOut, path };
}

// xorshift fills bytes with a fast pseudo-random sequence.
function fill(bytes) {
  const words = new Uint32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// fileRun sends a generated file of size bytes to target on a new call
// with only a data channel, and resolves with the transfer time from just
// before the header is sent to the file-ack, and its MB/s (10^6 bytes).
export async function fileRun({ target, size, timeoutMs = 120000 }) {
  if (size > MAX_SIZE || size % 4 !== 0) throw new Error(`size ${size}: want a multiple of 4 up to ${MAX_SIZE}`);
  if (!testFile || testFile.bytes.byteLength !== size) {
    testFile = null;
    const bytes = new Uint8Array(size);
    fill(bytes);
    testFile = { bytes, sha256: await sha256Hex(bytes) };
  }
  const { bytes, sha256 } = testFile;
  chain = Promise.resolve();
  const conn = newCall(target);
  const dc = conn.createDataChannel("file");
  dc.binaryType = "arraybuffer";
  dc.bufferedAmountLowThreshold = LOW_WATER;
  const opened = new Promise((resolve, reject) => {
    dc.onopen = resolve;
    dc.onclose = () => reject(new Error("channel closed"));
  });
  const ack = new Promise((resolve) => {
    dc.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const msg = JSON.parse(ev.data);
      if (msg.type === "file-ack") resolve(msg);
    };
  });
  await conn.setLocalDescription(await conn.createOffer());
  const tOffer = performance.now();
  send({ type: "video-offer", target, sdp: conn.localDescription });
  try {
    await withTimeout(opened, timeoutMs, "channel open");
    const tOpen = performance.now();
    const t0 = performance.now();
    const transfer = (async () => {
      dc.send(JSON.stringify({ type: "file", name: "callbench.bin", size, sha256, mime: "" }));
      let pauses = 0;
      for (let off = 0; off < size; off += CHUNK_SIZE) {
        if (dc.bufferedAmount > HIGH_WATER) {
          pauses++;
          await new Promise((resolve) => dc.addEventListener("bufferedamountlow", resolve, { once: true }));
        }
        dc.send(bytes.subarray(off, Math.min(off + CHUNK_SIZE, size)));
      }
      dc.send(JSON.stringify({ type: "eof" }));
      return { msg: await ack, pauses };
    })();
    const { msg, pauses } = await withTimeout(transfer, timeoutMs, "transfer");
    const ms = performance.now() - t0;
    return {
      ok: msg.ok === true && msg.sha256 === sha256, size, sha256, peer_sha256: msg.sha256, error: msg.error || "",
      open_ms: tOpen - tOffer, transfer_ms: ms, mbps: size / ms / 1000, pauses, path: await selectedPath(conn),
    };
  } finally {
    dc.close();
    closeCall();
    send({ type: "hang-up", target });
  }
}

// receiveFile is the callee's side of a transfer; it times it from the
// header to the file-ack, SHA-256 included.
function receiveFile(dc) {
  dc.binaryType = "arraybuffer";
  let hdr = null;
  let buf = null;
  let got = 0;
  let t0 = 0;
  dc.onmessage = async (ev) => {
    if (typeof ev.data !== "string") {
      if (buf && got + ev.data.byteLength <= buf.byteLength) buf.set(new Uint8Array(ev.data), got);
      got += ev.data.byteLength;
      return;
    }
    const msg = JSON.parse(ev.data);
    if (!hdr && msg.type === "file" && Number.isSafeInteger(msg.size) && msg.size <= MAX_SIZE) {
      hdr = msg;
      t0 = performance.now();
      buf = new Uint8Array(msg.size);
    } else if (hdr && msg.type === "eof") {
      const sha256 = got === hdr.size ? await sha256Hex(buf) : null;
      const ok = sha256 === hdr.sha256;
      dc.send(JSON.stringify({ type: "file-ack", sha256, ok, ...(ok ? {} : { error: sha256 ? "sha256 mismatch" : "size" }) }));
      const ms = performance.now() - t0;
      lastReceive = { ok, size: got, sha256, receive_ms: ms, mbps: got / ms / 1000 };
      buf = null;
    }
  };
}

// takeReceive resolves with the callee's last reception, waiting up to
// timeoutMs for it, and forgets it.
export async function takeReceive(timeoutMs = 5000) {
  const end = performance.now() + timeoutMs;
  while (!lastReceive && performance.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
  const r = lastReceive;
  lastReceive = null;
  return r;
}
