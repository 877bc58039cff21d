// File transfer over RTCDataChannels; the format is documented in
// docs/file-transfer.md. One channel labelled "file" per transfer:
// a JSON header, binary chunks of CHUNK_SIZE bytes, a JSON "eof", and the
// receiver's JSON "file-ack" with the SHA-256 it computed.

/** The data channel label of a transfer. */
export const LABEL = "file";
/** The size of every binary message but the last. */
export const CHUNK_SIZE = 16 * 1024;
/** The sender pauses above HIGH_WATER buffered bytes until below LOW_WATER. */
export const HIGH_WATER = 1024 * 1024;
export const LOW_WATER = 256 * 1024;
/** The largest file this page accepts (it holds files in memory). */
export const MAX_SIZE = 512 * 1024 * 1024;

/** The lowercase hex SHA-256 of bytes. */
export async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Waits for channel to open. */
function opened(channel) {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener("open", () => resolve(), { once: true });
    channel.addEventListener("close", () => reject(new Error("channel closed before it opened")), { once: true });
  });
}

/** Waits until channel's send buffer drained below LOW_WATER. */
function drained(channel) {
  if (channel.bufferedAmount <= LOW_WATER) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      channel.removeEventListener("bufferedamountlow", done);
      channel.removeEventListener("close", fail);
      resolve();
    };
    const fail = () => {
      channel.removeEventListener("bufferedamountlow", done);
      reject(new Error("channel closed during the transfer"));
    };
    channel.addEventListener("bufferedamountlow", done);
    channel.addEventListener("close", fail, { once: true });
  });
}

/**
 * Sends one file on a new channel from createChannel(label) and resolves
 * with {ok, sha256, peerSha256, error, pauses}: ok when the receiver's
 * file-ack has ok and our SHA-256; pauses counts flow-control waits.
 * @param {(label: string) => RTCDataChannel} createChannel
 * @param {{name: string, mime: string, bytes: Uint8Array}} file
 * @param {(sent: number, size: number) => void} onprogress
 */
export async function sendFile(createChannel, file, onprogress = () => {}) {
  const { bytes } = file;
  const sha256 = await sha256Hex(bytes);
  const channel = createChannel(LABEL);
  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = LOW_WATER;
  const ack = new Promise((resolve, reject) => {
    channel.addEventListener("message", (ev) => {
      if (typeof ev.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "file-ack") resolve(msg);
    });
    channel.addEventListener("close", () => reject(new Error("channel closed before the file-ack")));
  });
  ack.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
  let pauses = 0;
  try {
    await opened(channel);
    channel.send(JSON.stringify({ type: "file", name: file.name, size: bytes.byteLength, sha256, mime: file.mime }));
    for (let off = 0; off < bytes.byteLength; off += CHUNK_SIZE) {
      if (channel.bufferedAmount > HIGH_WATER) {
        pauses++;
        await drained(channel);
      }
      channel.send(bytes.subarray(off, Math.min(off + CHUNK_SIZE, bytes.byteLength)));
      onprogress(Math.min(off + CHUNK_SIZE, bytes.byteLength), bytes.byteLength);
    }
    if (bytes.byteLength === 0) onprogress(0, 0);
    channel.send(JSON.stringify({ type: "eof" }));
    const res = await ack;
    return { ok: res.ok === true && res.sha256 === sha256, sha256, peerSha256: res.sha256, error: res.error, pauses };
  } finally {
    channel.close();
  }
}

/**
 * Receives one file on channel (labelled "file", opened by the peer) and
 * resolves with {name, size, mime, sha256, expected, ok, bytes, error}.
 * onheader(header) is called when the header arrives, onprogress(received, size) per chunk.
 */
export function receiveFile(channel, { onheader = () => {}, onprogress = () => {} } = {}) {
  channel.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    let header = null;
    let buf = null;
    let received = 0;
    let finished = false;
    const finish = async (error) => {
      if (finished) return;
      finished = true;
      const bytes = buf ? buf.subarray(0, received) : new Uint8Array(0);
      const sha256 = error ? null : await sha256Hex(bytes);
      if (!error && received !== header.size) error = `size: got ${received} bytes, want ${header.size}`;
      if (!error && sha256 !== header.sha256) error = "sha256 mismatch";
      const ok = !error;
      try {
        channel.send(JSON.stringify({ type: "file-ack", sha256, ok, ...(error ? { error } : {}) }));
      } catch (err) {
        console.warn("files: ack:", err);
      }
      resolve({ name: header?.name ?? "", size: received, mime: header?.mime ?? "", sha256, expected: header?.sha256 ?? null, ok, error, bytes });
    };
    channel.addEventListener("message", (ev) => {
      if (finished) return;
      if (typeof ev.data === "string") {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch {
          finish("bad message");
          return;
        }
        if (!header) {
          if (msg.type !== "file" || !Number.isSafeInteger(msg.size) || msg.size < 0 || typeof msg.sha256 !== "string") {
            header = { name: "", size: 0, sha256: "" };
            finish("bad header");
            return;
          }
          if (msg.size > MAX_SIZE) {
            header = msg;
            finish("too large");
            return;
          }
          header = { name: String(msg.name ?? "file"), size: msg.size, sha256: msg.sha256.toLowerCase(), mime: String(msg.mime ?? "") };
          buf = new Uint8Array(header.size);
          onheader(header);
        } else if (msg.type === "eof") {
          finish();
        }
        return;
      }
      if (!header) {
        header = { name: "", size: 0, sha256: "" };
        finish("data before header");
        return;
      }
      const chunk = new Uint8Array(ev.data);
      if (received + chunk.byteLength > header.size) {
        received += chunk.byteLength;
        finish(`size: more than ${header.size} bytes`);
        return;
      }
      buf.set(chunk, received);
      received += chunk.byteLength;
      onprogress(received, header.size);
    });
    channel.addEventListener("close", () => {
      if (!finished) reject(new Error("channel closed before eof"));
    });
  });
}
