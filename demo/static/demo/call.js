// One call as this tab lives it (docs/calls.md): joining (or waiting to be admitted), local
// media, one Peer per other participant, media state, connection quality, the call's chat,
// leaving, and picking all of it up again after a reconnect or a reload.
//
// Who offers: whoever joins finds in the join answer the participants already connected
// ("joined") and offers to each of them; those already in the call wait for offers. A reloaded
// page is a newcomer again, so it offers, and the other side (peer.js) answers from a fresh
// connection. After a mere socket reconnect, peers whose connection still works are kept.

import { ApiError } from "./api.js";
import { CallChat } from "./chat.js";
import { Peer } from "./peer.js";

const ACTIVE_CALL_KEY = "telehealth.activeCall";
const QUALITY_SECONDS = 5;

// The call this tab is in, kept across a reload of the tab (sessionStorage).
export function rememberedCall() {
  try {
    return JSON.parse(window.sessionStorage.getItem(ACTIVE_CALL_KEY));
  } catch {
    return null;
  }
}

function remember(call) {
  if (call) window.sessionStorage.setItem(ACTIVE_CALL_KEY, JSON.stringify(call));
  else window.sessionStorage.removeItem(ACTIVE_CALL_KEY);
}

export class CallSession {
  constructor({ api, realtime, me, callId, ui }) {
    this.api = api;
    this.realtime = realtime;
    this.me = me; // the signed-in user (me/ or the login answer)
    this.callId = callId;
    this.ui = ui;
    this.call = null; // the latest snapshot (join answer, REST)
    this.status = "new"; // new | waiting | joined | ended
    this.participants = new Map(); // user id -> participant, as the call answers them
    this.peers = new Map(); // user id -> Peer
    this.remoteQuality = new Map(); // user id -> the latest quality.recorded
    this.iceServers = [];
    this.localStream = null;
    this.camera = null;
    this.microphone = null;
    this.screen = null;
    this.audioEnabled = true;
    this.videoEnabled = true;
    this.chat = new CallChat({ api, realtime, me: me.id, callId, onChange: (messages) => ui.chat(this, messages) });
    this.qualityTimer = null;
    this.lastStats = new Map();
    // Signals are handled one at a time, in the order they came, and only once a join under
    // way has finished (an offer can arrive while getUserMedia is still asking).
    this.entering = Promise.resolve();
    this.signals = Promise.resolve();
  }

  get isHost() {
    return this.call && this.call.host_id === this.me.id;
  }

  get myParticipant() {
    return this.participants.get(this.me.id);
  }

  // call.join on the socket: REST's join, and this socket becomes where the call's events and
  // signals to me go. Answered `waiting: true` (no credentials) until the host admits me; then
  // waiting_room.admitted arrives and this runs again.
  async join() {
    const entered = this.realtime
      .request("call.join", { call_id: this.callId })
      .then((answer) => this.enter(answer));
    this.entering = entered.catch(() => {});
    await entered;
    if (this.status === "joined") await this.afterEntering({ offer: true });
  }

  // The callee's call.accept answers the same join payload; the caller joins and offers.
  async accepted(answer) {
    const entered = this.enter(answer);
    this.entering = entered.catch(() => {});
    await entered;
    await this.afterEntering({ offer: false });
  }

  // The answer applied: waiting, or in the call with local media. Signals wait for this.
  async enter(answer) {
    this.applyCall(answer.call);
    remember({ callId: this.callId, kind: answer.call.kind, sessionId: answer.call.session_id });
    if (answer.waiting) {
      this.status = "waiting";
      this.stopMedia();
      await this.refreshWaiting();
      return;
    }
    this.iceServers = answer.ice_servers || [];
    await this.startMedia();
    this.status = "joined";
    this.ui.inCall(this);
  }

  async afterEntering({ offer }) {
    if (offer) await this.connectPeers();
    this.startQuality();
    try {
      await this.chat.catchUp();
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "CHAT_DISABLED")) throw error;
    }
  }

  applyCall(call) {
    this.call = call;
    this.participants = new Map(call.participants.map((p) => [p.user.id, p]));
    const mine = this.myParticipant;
    if (mine) {
      // What the server holds wins: mute_on_join, or the state before a reload.
      this.audioEnabled = mine.audio_enabled;
      this.videoEnabled = mine.video_enabled;
    }
    this.ui.participants(this);
  }

  // GET calls/<id>/waiting-room/ -> {position, host_status, ...}: what the waiting patient sees.
  async refreshWaiting() {
    if (this.status !== "waiting") return;
    const waiting = await this.api.get(`calls/${this.callId}/waiting-room/`);
    this.ui.waiting(this, waiting);
  }

  // --- Local media --------------------------------------------------------------------------

  async startMedia() {
    if (this.localStream) return;
    const wantVideo = this.call.media !== "voice";
    this.localStream = await acquire({ audio: true, video: wantVideo });
    this.microphone = this.localStream.getAudioTracks()[0] || null;
    this.camera = this.localStream.getVideoTracks()[0] || null;
    if (this.microphone) this.microphone.enabled = this.audioEnabled;
    if (this.camera) this.camera.enabled = this.videoEnabled;
  }

  stopMedia() {
    this.stopScreenTrack();
    if (this.localStream) this.localStream.getTracks().forEach((track) => track.stop());
    this.localStream = this.microphone = this.camera = null;
  }

  // media.update: the others hear media.updated. The local track is switched first, so the
  // picture or sound stops at once; the server's answer is the state everyone sees.
  async setAudio(enabled) {
    if (this.microphone) this.microphone.enabled = enabled;
    this.audioEnabled = enabled;
    await this.updateMedia({ audio_enabled: enabled });
  }

  async setVideo(enabled) {
    if (this.camera) this.camera.enabled = enabled;
    this.videoEnabled = enabled;
    await this.updateMedia({ video_enabled: enabled });
  }

  async updateMedia(changes) {
    const state = await this.realtime.request("media.update", { call_id: this.callId, ...changes });
    this.applyMediaState(this.me.id, state);
  }

  get canShareScreen() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia) && this.call.media !== "voice";
  }

  async startScreenShare() {
    if (this.screen) return;
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = display.getVideoTracks()[0];
    try {
      await this.updateMedia({ screen_sharing: true }); // 403 SCREEN_SHARE_DISABLED if the host turned it off
    } catch (error) {
      track.stop();
      throw error;
    }
    this.screen = track;
    track.onended = () => this.stopScreenShare(); // the browser's own "Stop sharing" button
    await Promise.all([...this.peers.values()].map((peer) => peer.replaceVideoTrack(track)));
    this.ui.participants(this);
  }

  async stopScreenShare() {
    if (!this.screen) return;
    this.stopScreenTrack();
    await Promise.all([...this.peers.values()].map((peer) => peer.replaceVideoTrack(this.camera)));
    if (this.status === "joined") await this.updateMedia({ screen_sharing: false }).catch(() => {});
    this.ui.participants(this);
  }

  stopScreenTrack() {
    if (this.screen) {
      this.screen.onended = null;
      this.screen.stop();
    }
    this.screen = null;
  }

  // --- Peers --------------------------------------------------------------------------------

  others() {
    return [...this.participants.values()].filter((p) => p.user.id !== this.me.id && p.status === "joined");
  }

  async connectPeers() {
    for (const participant of this.others()) {
      const current = this.peers.get(participant.user.id);
      if (current && current.healthy) continue;
      await this.offerTo(participant.user.id);
    }
  }

  async offerTo(userId) {
    const peer = this.newPeer(userId);
    try {
      await peer.offer();
    } catch (error) {
      // PEER_NOT_CONNECTED: they are in the call but their socket is not (a reload under way);
      // they offer when they are back.
      if (this.peers.get(userId) === peer) this.dropPeer(userId);
      if (error.code !== "PEER_NOT_CONNECTED") console.warn("offer failed", error);
    }
  }

  newPeer(userId) {
    this.dropPeer(userId);
    const tracks = { audio: this.microphone, video: this.screen || this.camera };
    const peer = new Peer({
      remoteUserId: userId,
      iceServers: this.iceServers,
      localTracks: tracks,
      signal: (type, data) => this.signal(type, { ...data, to: userId }),
      onTrack: (stream) => this.ui.remoteStream(this, userId, stream),
      onStateChange: (state, which) => this.peerStateChanged(userId, which, state),
    });
    this.peers.set(userId, peer);
    this.ui.participants(this);
    return peer;
  }

  dropPeer(userId) {
    const peer = this.peers.get(userId);
    if (peer) peer.close();
    this.peers.delete(userId);
  }

  // Offers and answers are requests (their errors come back with the id); candidates are not.
  signal(type, data) {
    const message = { call_id: this.callId, ...data };
    if (type === "signal.ice") return this.realtime.send(type, message);
    return this.realtime.request(type, message);
  }

  polite(userId) {
    return this.me.id < userId;
  }

  onSignal(type, data) {
    if (type === "signal.offer") return this.onOffer(data);
    if (type === "signal.answer") return this.onAnswer(data);
    return this.onCandidates(data);
  }

  async onOffer({ from, sdp }) {
    if (this.status !== "joined") return;
    const current = this.peers.get(from);
    if (current && current.pc.signalingState === "have-local-offer" && !this.polite(from)) return; // glare: ours wins
    const peer = this.newPeer(from);
    await peer.acceptOffer(sdp);
  }

  async onAnswer({ from, sdp }) {
    const peer = this.peers.get(from);
    if (peer) await peer.acceptAnswer(sdp);
  }

  async onCandidates({ from, candidates }) {
    const peer = this.peers.get(from);
    if (peer) await peer.addCandidates(candidates);
  }

  peerStateChanged(userId, peer, state) {
    if (this.peers.get(userId) !== peer) return; // a replaced connection
    this.ui.participants(this);
    // A connection that failed is started afresh by one side only (the impolite one), if the
    // other is still in the call; the polite side waits for that offer.
    if (state === "failed" && !this.polite(userId) && this.participants.get(userId)?.status === "joined") {
      this.offerTo(userId);
    }
  }

  // --- Events -------------------------------------------------------------------------------

  // Everything the socket delivers about this call. Returns true when the event was this call's.
  async onEvent(type, data) {
    const callId = data.call_id || (data.call && data.call.id);
    if (callId && callId !== this.callId) return false;
    switch (type) {
      case "signal.offer":
      case "signal.answer":
      case "signal.ice":
        this.signals = this.signals
          .then(() => this.entering)
          .catch(() => {})
          .then(() => this.onSignal(type, data))
          .catch((error) => console.warn(type, "failed", error));
        return true;
      case "call.participant_joined":
        await this.participantJoined(data.participant);
        return true;
      case "call.participant_left":
        this.participantLeft(data.user.id, data.reason);
        return true;
      case "media.updated":
        this.applyMediaState(data.user_id, data);
        return true;
      case "quality.recorded":
        if (data.user_id !== this.me.id) this.remoteQuality.set(data.user_id, data);
        this.ui.participants(this);
        return true;
      case "waiting_room.admitted":
        await this.join();
        return true;
      case "waiting_room.sent_back":
        this.closePeers();
        this.stopMedia();
        this.stopQuality();
        this.status = "waiting";
        await this.refreshWaiting();
        return true;
      case "waiting_room.updated":
        return false; // the host's queue (app.js)
      case "call.participant_removed":
        this.finish({ reason: "removed" });
        return true;
      case "call.ended":
        this.finish({ reason: data.end_reason, durationSeconds: data.duration_seconds, endedAt: data.ended_at });
        return true;
      case "call.host_changed":
      case "call.settings_updated":
        await this.refreshCall();
        return true;
      default:
        return false;
    }
  }

  async participantJoined(participant) {
    const known = this.participants.get(participant.user.id);
    if (!known) {
      await this.refreshCall(); // events carry no names: read the participants over REST
      return;
    }
    Object.assign(known, participant);
    this.ui.participants(this);
  }

  participantLeft(userId, reason) {
    const participant = this.participants.get(userId);
    if (participant) participant.status = reason === "sent_back" ? "waiting" : "left";
    this.dropPeer(userId);
    this.ui.remoteStream(this, userId, null);
    this.ui.participants(this);
  }

  applyMediaState(userId, state) {
    const participant = this.participants.get(userId);
    if (!participant) return;
    for (const name of ["audio_enabled", "video_enabled", "screen_sharing"]) {
      if (state[name] !== undefined) participant[name] = state[name];
    }
    this.ui.participants(this);
  }

  // GET calls/<id>/ (the call with its participants and their names).
  async refreshCall() {
    const call = await this.api.get(`calls/${this.callId}/`);
    const participants = await this.api.get(`calls/${this.callId}/participants/`);
    call.participants = participants.results || participants;
    this.applyCall(call);
  }

  // After the socket came back (4503, a network drop): join again on the new socket (the answer
  // is the call's state now), offer to whoever has no working connection with us, and fetch
  // the chat messages sent meanwhile.
  async resync() {
    if (this.status === "ended") return;
    await this.join();
  }

  // --- Quality ------------------------------------------------------------------------------

  startQuality() {
    if (this.qualityTimer) return;
    this.qualityTimer = setInterval(() => this.reportQuality().catch(() => {}), QUALITY_SECONDS * 1000);
  }

  stopQuality() {
    clearInterval(this.qualityTimer);
    this.qualityTimer = null;
  }

  // POST calls/<id>/quality/ with what getStats measured since the last sample; the answer's
  // `assessment` is the server's grade of it, and the others hear quality.recorded.
  async reportQuality() {
    const peer = [...this.peers.values()].find((p) => p.state === "connected");
    if (!peer || this.status !== "joined") return;
    const now = await peer.stats();
    const before = this.lastStats.get(peer.remoteUserId);
    this.lastStats.set(peer.remoteUserId, now);
    if (!before) return;
    const seconds = (now.timestamp - before.timestamp) / 1000;
    const received = now.packetsReceived - before.packetsReceived;
    const lost = now.packetsLost - before.packetsLost;
    const kbps = (kind) => Math.max(0, ((now.bytesReceived[kind] - before.bytesReceived[kind]) * 8) / seconds / 1000);
    const sample = {
      rtt_ms: now.rttMs,
      jitter_ms: now.jitterMs,
      packet_loss_percent: received + lost > 0 ? (100 * Math.max(0, lost)) / (received + lost) : null,
      audio_bitrate_kbps: kbps("audio"),
      video_bitrate_kbps: kbps("video"),
      frame_rate: now.frameRate,
    };
    if (now.width && now.height) Object.assign(sample, { resolution_width: now.width, resolution_height: now.height });
    for (const [name, value] of Object.entries(sample)) if (value === null || !Number.isFinite(value)) delete sample[name];
    if (!Object.keys(sample).length) return;
    try {
      const stored = await this.api.post(`calls/${this.callId}/quality/`, sample);
      this.ui.myQuality(this, stored);
    } catch (error) {
      if (!(error instanceof ApiError) || ![409, 429].includes(error.status)) throw error;
    }
  }

  // --- Leaving ------------------------------------------------------------------------------

  // call.leave: I go; a session call goes on for the others (an ad-hoc call of two ends).
  async leave() {
    try {
      if (this.call.kind === "ad_hoc") await this.realtime.request("call.hangup", { call_id: this.callId });
      else await this.realtime.request("call.leave", { call_id: this.callId });
    } finally {
      this.finish({ reason: "left" });
    }
  }

  // POST calls/<id>/end/: the host (or either side of an ad-hoc call) ends it for everyone.
  // call.ended then reaches everyone, this tab too, with the server's duration.
  async end() {
    const call = await this.api.post(`calls/${this.callId}/end/`);
    this.finish({ reason: call.end_reason, durationSeconds: call.duration_seconds, endedAt: call.ended_at });
  }

  closePeers() {
    for (const userId of [...this.peers.keys()]) {
      this.dropPeer(userId);
      this.ui.remoteStream(this, userId, null);
    }
  }

  finish(summary) {
    if (this.status === "ended") return;
    this.status = "ended";
    this.stopQuality();
    this.closePeers();
    this.stopMedia();
    remember(null);
    this.ui.ended(this, summary);
  }

  // For tests and debugging: each peer's connection (its serial number in this tab), its state
  // and inbound video, from getStats.
  async stats() {
    const peers = [];
    for (const [userId, peer] of this.peers) {
      const figures = await peer.stats();
      peers.push({ userId, connection: peer.serial, state: peer.state, framesReceived: figures.framesReceived, framesDecoded: figures.framesDecoded });
    }
    return { status: this.status, peers };
  }
}

// Camera and microphone, or as much of them as there is: a call goes on without a camera.
async function acquire({ audio, video }) {
  const attempts = [{ audio, video }, { audio, video: false }, { audio: false, video }];
  for (const constraints of attempts) {
    if (!constraints.audio && !constraints.video) continue;
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      console.warn("getUserMedia failed", constraints, error.name);
    }
  }
  return new MediaStream();
}
