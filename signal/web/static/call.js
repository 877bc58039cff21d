// Call: one RTCPeerConnection to one peer with perfect negotiation.
//
// Either side may send a "video-offer" at any time (the first offer, a
// renegotiation for a new data channel, an ICE restart). When offers
// collide, the polite peer — the one whose name sorts first — yields: its
// setRemoteDescription rolls back its own offer. The impolite peer ignores
// the colliding offer. When ICE fails, restartIce() starts a new offer.

/** Whether self is the polite peer towards peer: the lower name is polite. */
export function politeFor(self, peer) {
  return self < peer;
}

/** The DTLS role ("active" or "passive") in the first m-section of sdp, or null. */
function setupRole(sdp) {
  return /^a=setup:(active|passive)\b/m.exec(sdp ?? "")?.[1] ?? null;
}

/** Our DTLS role as the last completed negotiation settled it, or null before one. */
export function dtlsRole(local, remote) {
  if (!local || !remote) return null;
  if (local.type === "answer") return setupRole(local.sdp);
  return { active: "passive", passive: "active" }[setupRole(remote.sdp)] ?? null;
}

/**
 * A subsequent offer states our DTLS role instead of actpass (RFC 8842,
 * section 5.5), so the answerer keeps the association's roles. Firefox
 * answers an ICE-restart offer that says actpass with active (the client)
 * even when it was the server, which Chromium rejects ("Failed to set SSL
 * role for the transport").
 */
export function keepDtlsRole(sdp, role) {
  return role ? sdp.replaceAll("a=setup:actpass", `a=setup:${role}`) : sdp;
}

/** ICE restarts tried after a failure before the call is given up. */
export const MAX_ICE_RESTARTS = 3;

export class Call {
  /**
   * @param {object} o
   * @param {string} o.self our registered name
   * @param {string} o.peer the other side's name
   * @param {RTCIceServer[]} o.iceServers
   * @param {(msg: object) => void} o.send sends a signaling message
   * @param {() => void} o.onchange called when any state changes
   * @param {(stream: MediaStream) => void} o.onstream the remote media
   * @param {(ch: RTCDataChannel) => void} o.ondatachannel channels the peer opened
   * @param {() => void} o.onfailed called when MAX_ICE_RESTARTS restarts in a row failed
   */
  constructor({ self, peer, iceServers, send, onchange, onstream, ondatachannel, onfailed }) {
    this.self = self;
    this.peer = peer;
    this.polite = politeFor(self, peer);
    this.restarts = 0;
    /** Offers that collided with ours, and how many of them we ignored. */
    this.collisions = 0;
    this.ignoredOffers = 0;
    /** Candidates dropped for credentials the remote description no longer holds. */
    this.staleCandidates = 0;
    this.remoteStream = new MediaStream();
    this.#send = send;
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;

    pc.onnegotiationneeded = async () => {
      try {
        this.#makingOffer = true;
        await pc.setLocalDescription();
        const role = dtlsRole(pc.currentLocalDescription, pc.currentRemoteDescription);
        const sdp = { type: "offer", sdp: keepDtlsRole(pc.localDescription.sdp, role) };
        this.#send({ type: "video-offer", name: self, target: peer, sdp });
      } catch (err) {
        console.error("call: offer:", err);
      } finally {
        this.#makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.#send({ type: "new-ice-candidate", name: self, target: peer, candidate: candidate.toJSON() });
    };
    pc.oniceconnectionstatechange = () => {
      switch (pc.iceConnectionState) {
        case "connected":
        case "completed":
          this.#failedRestarts = 0;
          break;
        case "failed":
          if (this.#failedRestarts++ < MAX_ICE_RESTARTS) this.restartIce();
          else onfailed?.();
          break;
      }
      onchange();
    };
    pc.onconnectionstatechange = onchange;
    pc.onsignalingstatechange = onchange;
    pc.ontrack = ({ track }) => {
      this.remoteStream.addTrack(track);
      track.onunmute = () => onstream(this.remoteStream);
      onstream(this.remoteStream);
    };
    pc.ondatachannel = ({ channel }) => ondatachannel(channel);
  }

  #send;
  #makingOffer = false;
  #ignoreOffer = false;
  #answerPending = false;
  #failedRestarts = 0;
  #chain = Promise.resolve();

  /** Runs fn after every earlier signaling step of this call. */
  #serial(fn) {
    const p = this.#chain.then(fn);
    this.#chain = p.catch((err) => console.error("call:", err));
    return p;
  }

  /** Sends our media: adding tracks starts (re)negotiation. */
  addStream(stream) {
    for (const track of stream.getTracks()) this.pc.addTrack(track, stream);
  }

  /** Answers the first offer, sending our media back. */
  accept(offer, stream) {
    return this.#serial(async () => {
      await this.pc.setRemoteDescription(offer);
      this.addStream(stream);
      await this.pc.setLocalDescription();
      this.#send({ type: "video-answer", name: this.self, target: this.peer, sdp: this.pc.localDescription.toJSON() });
    });
  }

  /** Applies a remote offer or answer (perfect negotiation). */
  handleDescription(desc) {
    return this.#serial(async () => {
      const pc = this.pc;
      const readyForOffer = !this.#makingOffer && (pc.signalingState === "stable" || this.#answerPending);
      const collision = desc.type === "offer" && !readyForOffer;
      this.#ignoreOffer = !this.polite && collision;
      if (collision) this.collisions++;
      if (this.#ignoreOffer) {
        this.ignoredOffers++;
        return;
      }
      this.#answerPending = desc.type === "answer";
      // In have-local-offer, setRemoteDescription(offer) rolls our offer back.
      await pc.setRemoteDescription(desc);
      this.#answerPending = false;
      if (desc.type === "offer") {
        await pc.setLocalDescription();
        this.#send({ type: "video-answer", name: this.self, target: this.peer, sdp: pc.localDescription.toJSON() });
      }
    });
  }

  /** Adds a remote ICE candidate. */
  handleCandidate(candidate) {
    return this.#serial(async () => {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch (err) {
        if (this.#ignoreOffer) return;
        if (this.#staleCandidate(candidate)) {
          this.staleCandidates++;
          return;
        }
        throw err;
      }
    });
  }

  /**
   * Tells whether a candidate belongs to ICE credentials the remote
   * description does not hold: those of an offer we ignored in a collision,
   * or of the generation before an ICE restart, still trickling in.
   */
  #staleCandidate(candidate) {
    const ufrag = candidate && candidate.usernameFragment;
    const sdp = this.pc.remoteDescription && this.pc.remoteDescription.sdp;
    if (!ufrag || !sdp) return false;
    return !sdp.split(/\r?\n/).includes(`a=ice-ufrag:${ufrag}`);
  }

  /** Restarts ICE: new credentials, new candidates, a new offer. */
  restartIce() {
    this.restarts++;
    this.pc.restartIce();
  }

  /** Opens a data channel to the peer. */
  createDataChannel(label, options) {
    return this.pc.createDataChannel(label, options);
  }

  /** Reads the selected route and media counters from getStats. */
  async stats() {
    const pc = this.pc;
    const report = await pc.getStats();
    let pair = null;
    let framesDecoded = 0;
    let bytesReceived = 0;
    let bytesSent = 0;
    for (const s of report.values()) {
      if (s.type === "transport") {
        bytesReceived += s.bytesReceived ?? 0;
        bytesSent += s.bytesSent ?? 0;
        if (s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) ?? pair;
      }
      if (s.type === "inbound-rtp" && s.kind === "video") framesDecoded += s.framesDecoded ?? 0;
    }
    if (!pair) {
      for (const s of report.values()) {
        if (s.type === "candidate-pair" && (s.selected || (s.nominated && s.state === "succeeded"))) {
          pair = s;
          break;
        }
      }
    }
    // Firefox has no transport stats: count the selected pair's bytes.
    if (pair && !bytesReceived && !bytesSent) {
      bytesReceived = pair.bytesReceived ?? 0;
      bytesSent = pair.bytesSent ?? 0;
    }
    const local = pair && report.get(pair.localCandidateId);
    const remote = pair && report.get(pair.remoteCandidateId);
    return {
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      localCandidateType: local?.candidateType ?? null,
      remoteCandidateType: remote?.candidateType ?? null,
      protocol: local?.protocol ?? null,
      rttMs: pair?.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null,
      framesDecoded,
      bytesReceived,
      bytesSent,
      restarts: this.restarts,
      collisions: this.collisions,
      ignoredOffers: this.ignoredOffers,
      staleCandidates: this.staleCandidates,
    };
  }

  close() {
    this.pc.close();
    for (const t of this.remoteStream.getTracks()) t.stop();
  }
}
