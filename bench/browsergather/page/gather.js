// gather.js times one ICE gathering in a fresh RTCPeerConnection, the way
// the Trickle ICE sample page does: a data channel, createOffer, then
// setLocalDescription starts gathering. Every time is in milliseconds since
// just before setLocalDescription (performance.now()).

// candidateInfo copies what the benchmark reports about one candidate.
function candidateInfo(c, url, elapsed) {
  return {
    elapsed_ms: elapsed,
    type: c.type,
    protocol: c.protocol,
    address: c.address,
    port: c.port,
    relay_protocol: c.relayProtocol || "",
    tcp_type: c.tcpType || "",
    related_address: c.relatedAddress || "",
    related_port: c.relatedPort || 0,
    foundation: c.foundation,
    priority: c.priority,
    url: url || c.url || "",
    candidate: c.candidate,
  };
}

// gather resolves when gathering is complete (the gathering state is
// "complete" and the null candidate has arrived) or timeoutMs has passed,
// and always closes the connection.
export async function gather({ iceServers = [], timeoutMs = 30000 } = {}) {
  const result = {
    set_local_description_ms: null,
    complete_ms: null,
    end_of_candidates_ms: null,
    timed_out: false,
    candidates: [],
    errors: [],
  };
  const pc = new RTCPeerConnection({ iceServers, iceCandidatePoolSize: 0 });
  let timer;
  try {
    pc.createDataChannel("gather");
    const offer = await pc.createOffer();
    let t0 = 0;
    const since = () => performance.now() - t0;
    const done = new Promise((resolve) => {
      const check = () => {
        if (result.complete_ms !== null && result.end_of_candidates_ms !== null) resolve();
      };
      pc.onicecandidate = (e) => {
        if (!e.candidate || e.candidate.candidate === "") {
          if (result.end_of_candidates_ms === null) result.end_of_candidates_ms = since();
          check();
          return;
        }
        result.candidates.push(candidateInfo(e.candidate, e.url, since()));
      };
      pc.onicecandidateerror = (e) => {
        result.errors.push({
          elapsed_ms: since(),
          url: e.url || "",
          address: e.address || "",
          port: e.port || 0,
          error_code: e.errorCode,
          error_text: e.errorText || "",
        });
      };
      pc.onicegatheringstatechange = () => {
        if (pc.iceGatheringState === "complete" && result.complete_ms === null) {
          result.complete_ms = since();
          check();
        }
      };
    });
    const expired = new Promise((resolve) => {
      timer = setTimeout(() => {
        result.timed_out = true;
        resolve();
      }, timeoutMs);
    });
    t0 = performance.now();
    await pc.setLocalDescription(offer);
    result.set_local_description_ms = since();
    await Promise.race([done, expired]);
  } finally {
    clearTimeout(timer);
    pc.close();
  }
  return result;
}
