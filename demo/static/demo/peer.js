// One RTCPeerConnection to one other participant, negotiated over the socket's signal.offer,
// signal.answer and signal.ice (docs/realtime.md, "Client messages").
//
// The rule both sides follow (call.js decides who offers):
// - A connection is negotiated once. Nothing renegotiates it: muting flips track.enabled and
//   screen sharing swaps the video sender's track (RTCRtpSender.replaceTrack), so neither needs
//   a new offer.
// - An offer therefore always means "the other side started afresh" (it joined, reloaded, or
//   gave up on a failed connection): the receiver drops its connection to that person and
//   answers from a new one.
// - When both offer at once, the polite side (the smaller user id) yields and answers; the
//   other ignores the offer it received and waits for the answer to its own.
// - Candidates are sent in batches (up to 50 a message) and buffered on arrival until the
//   remote description is set.

const ICE_BATCH_MS = 40;
const MAX_CANDIDATES = 50;
let connectionsMade = 0;

export class Peer {
  constructor({ remoteUserId, iceServers, localTracks, signal, onTrack, onStateChange }) {
    this.remoteUserId = remoteUserId;
    this.serial = ++connectionsMade; // which connection this is, for stats(): a re-offer makes a new one
    this.signal = signal; // (type, data) => Promise|void; data without call_id and to
    this.onStateChange = onStateChange;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.remoteStream = new MediaStream();
    this.pendingRemote = []; // candidates that arrived before the remote description
    this.outgoing = [];
    this.flushTimer = null;
    this.closed = false;

    this.localTracks = localTracks;
    this.audio = null;
    this.video = null;

    this.pc.ontrack = ({ track }) => {
      this.remoteStream.addTrack(track);
      onTrack(this.remoteStream);
    };
    this.pc.onicecandidate = ({ candidate }) => this.queueCandidate(candidate ? candidate.toJSON() : null);
    this.pc.onconnectionstatechange = () => this.onStateChange(this.pc.connectionState, this);
  }

  get state() {
    return this.pc.connectionState;
  }

  get healthy() {
    return !this.closed && ["new", "connecting", "connected"].includes(this.pc.connectionState);
  }

  // The side that starts: a fresh offer from this new connection.
  async offer() {
    // Always one audio and one video sender, with or without a local device, so the other side
    // can be received and a screen can later be shared through the video sender.
    this.audio = this.pc.addTransceiver(this.localTracks.audio || "audio", { direction: "sendrecv" });
    this.video = this.pc.addTransceiver(this.localTracks.video || "video", { direction: "sendrecv" });
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.signal("signal.offer", { sdp: this.pc.localDescription.sdp });
  }

  // The other side started: answer from this (new) connection.
  async acceptOffer(sdp) {
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    // The offer's m-lines made the transceivers: send our tracks on them (transceivers added
    // before the offer would not be matched to its m-lines, and would send nothing).
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      transceiver.direction = "sendrecv";
      await transceiver.sender.replaceTrack(this.localTracks[kind] || null);
      if (kind === "audio" && !this.audio) this.audio = transceiver;
      if (kind === "video" && !this.video) this.video = transceiver;
    }
    await this.flushRemoteCandidates();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this.signal("signal.answer", { sdp: this.pc.localDescription.sdp });
  }

  async acceptAnswer(sdp) {
    if (this.pc.signalingState !== "have-local-offer") return; // a stale answer
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    await this.flushRemoteCandidates();
  }

  async addCandidates(candidates) {
    if (!this.pc.remoteDescription) {
      this.pendingRemote.push(...candidates);
      return;
    }
    for (const candidate of candidates) await this.addCandidate(candidate);
  }

  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate === null ? undefined : candidate);
    } catch (error) {
      // A candidate of a connection the other side has since replaced (its ufrag differs).
      console.debug("ICE candidate ignored", error.message);
    }
  }

  async flushRemoteCandidates() {
    const candidates = this.pendingRemote.splice(0);
    for (const candidate of candidates) await this.addCandidate(candidate);
  }

  queueCandidate(candidate) {
    this.outgoing.push(candidate);
    if (this.outgoing.length >= MAX_CANDIDATES) return this.flushCandidates();
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flushCandidates(), ICE_BATCH_MS);
  }

  flushCandidates() {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.closed || this.outgoing.length === 0) return;
    const candidates = this.outgoing.splice(0, MAX_CANDIDATES);
    this.signal("signal.ice", { candidates });
    if (this.outgoing.length) this.flushCandidates();
  }

  // Swap what the video sender sends (camera <-> screen) without renegotiating.
  replaceVideoTrack(track) {
    this.localTracks.video = track;
    return this.video ? this.video.sender.replaceTrack(track) : Promise.resolve();
  }

  close() {
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }

  // What getStats says about this link: the inbound video (frames, resolution, rate), loss and
  // jitter of what arrives, round-trip time of the selected candidate pair, and bitrates.
  async stats() {
    const report = await this.pc.getStats();
    const figures = {
      framesReceived: 0,
      framesDecoded: 0,
      width: null,
      height: null,
      frameRate: null,
      packetsReceived: 0,
      packetsLost: 0,
      jitterMs: null,
      rttMs: null,
      bytesReceived: { audio: 0, video: 0 },
      bytesSent: { audio: 0, video: 0 },
      timestamp: performance.now(),
    };
    let pairId = null;
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp") {
        figures.packetsReceived += entry.packetsReceived || 0;
        figures.packetsLost += Math.max(0, entry.packetsLost || 0);
        figures.bytesReceived[entry.kind] += entry.bytesReceived || 0;
        if (entry.jitter !== undefined) figures.jitterMs = Math.max(figures.jitterMs || 0, entry.jitter * 1000);
        if (entry.kind === "video") {
          figures.framesReceived += entry.framesReceived || 0;
          figures.framesDecoded += entry.framesDecoded || 0;
          figures.width = entry.frameWidth || figures.width;
          figures.height = entry.frameHeight || figures.height;
          figures.frameRate = entry.framesPerSecond || figures.frameRate;
        }
      } else if (entry.type === "outbound-rtp") {
        figures.bytesSent[entry.kind] += entry.bytesSent || 0;
      } else if (entry.type === "transport" && entry.selectedCandidatePairId) {
        pairId = entry.selectedCandidatePairId;
      }
    });
    const pair = pairId && report.get(pairId);
    if (pair && pair.currentRoundTripTime !== undefined) figures.rttMs = pair.currentRoundTripTime * 1000;
    return figures;
  }
}
