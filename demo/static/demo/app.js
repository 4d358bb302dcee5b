// The page: sign-in, my sessions and can-join, the doctor's waiting-room queue, ringing, and the
// call view. State lives in api.js (tokens), socket.js (the connection), call.js (the call) and
// chat.js (its chat); this module wires them to the DOM. docs/client.md walks through it.

import { Api, ApiError } from "./api.js";
import { CallSession, rememberedCall } from "./call.js";
import { receiptLabel } from "./chat.js";
import { Realtime } from "./socket.js";

const $ = (selector) => document.querySelector(selector);

const state = {
  api: null,
  realtime: null,
  me: null,
  call: null, // the CallSession this tab is in (waiting or joined)
  ringing: null, // {callId, direction: "incoming" | "outgoing", otherId}
  people: new Map(), // user id -> name, from sessions and contacts (events carry ids only)
};

// --- Small helpers --------------------------------------------------------------------------

function show(selector, visible) {
  $(selector).hidden = !visible;
}

function notice(text, kind = "info") {
  const element = $("#notice");
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = !text;
}

function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error && error.code ? `${error.message} (${error.code})` : String(error);
}

// Run a button's action: disabled while it runs, errors shown in the notice line.
function action(button, run) {
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await run(event);
    } catch (error) {
      console.error(error);
      notice(describe(error), "error");
    } finally {
      button.disabled = false;
    }
  });
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  const minutes = Math.floor(seconds / 60);
  return minutes ? `${minutes} min ${seconds % 60} s` : `${seconds} s`;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function button(label, run, className = "small") {
  const node = element("button", { type: "button", className }, label);
  action(node, run);
  return node;
}

// --- Signing in -----------------------------------------------------------------------------

async function boot() {
  state.api = new Api({ base: document.body.dataset.apiBase, onSignedOut: signedOut });
  $("#sign-in-form").addEventListener("submit", signIn);
  action($("#sign-out"), async () => {
    if (state.call && state.call.status !== "ended") await state.call.leave().catch(() => {});
    state.realtime?.stop();
    await state.api.signOut();
    signedOut("Signed out.");
  });
  wireCallControls();
  try {
    const user = await state.api.restore(); // a reload: the refresh token of this tab
    if (user) return home(user);
  } catch (error) {
    notice(describe(error), "error");
  }
  signedOut("");
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const submit = form.querySelector("button");
  submit.disabled = true;
  try {
    const user = await state.api.signIn(form.email.value.trim(), form.password.value);
    form.password.value = "";
    notice("");
    await home(user);
  } catch (error) {
    notice(describe(error), "error");
  } finally {
    submit.disabled = false;
  }
}

function signedOut(reason) {
  state.realtime?.stop();
  state.realtime = null;
  state.me = null;
  show("#home-view", false);
  show("#whoami", false);
  show("#sign-in-view", true);
  if (reason) notice(reason);
}

async function home(user) {
  state.me = user;
  $("#whoami-name").textContent = user.display_name || user.full_name;
  $("#whoami-role").textContent = user.role;
  show("#whoami", true);
  show("#sign-in-view", false);
  show("#home-view", true);
  show("#queue-panel", user.role !== "patient");
  state.realtime = new Realtime(state.api, {
    url: document.body.dataset.socketUrl,
    onEvent,
    onReady,
    onState: (value) => {
      const badge = $("#socket-state");
      badge.textContent = value;
      badge.dataset.state = value;
    },
    onSignedOut: (reason) => {
      state.api.forget();
      signedOut(reason);
    },
  });
  state.realtime.start();
  await Promise.all([loadSessions(), loadContacts(), loadQueue()]);
}

// After every connection.ready: a fresh socket has joined no call and missed every event, so
// the call is joined again (or, after a reload, found again) and lists are read again.
async function onReady(_ready, { reconnected }) {
  try {
    if (state.call && state.call.status !== "ended") {
      await state.call.resync();
    } else {
      const remembered = rememberedCall();
      if (remembered) await resumeCall(remembered);
    }
  } catch (error) {
    notice(`Could not rejoin the call: ${describe(error)}`, "error");
  }
  if (reconnected) await Promise.all([loadSessions(), loadQueue()]).catch(() => {});
}

// A reload in the middle of a call: if the call is still live, join it again.
async function resumeCall({ callId }) {
  let call;
  try {
    call = await state.api.get(`calls/${callId}/`);
  } catch {
    return forgetCall();
  }
  if (!["waiting", "ongoing"].includes(call.status)) return forgetCall();
  notice("Rejoining your call…");
  await startCall(callId);
  notice("");
}

function forgetCall() {
  window.sessionStorage.removeItem("telehealth.activeCall");
}

// --- Sessions and can-join ------------------------------------------------------------------

async function loadSessions() {
  const query = "?status=requested&status=confirmed&status=in_progress&page_size=50";
  const sessions = await state.api.get(`sessions/${query}`);
  const list = $("#sessions-list");
  list.replaceChildren();
  if (!sessions.results.length) list.append(element("li", { className: "muted" }, "No upcoming sessions."));
  for (const session of sessions.results) {
    const other = state.me.role === "patient" ? session.doctor : session.patient;
    state.people.set(other.id, other.full_name);
    const reason = element("span", { className: "can-join" });
    const join = button("Join", () => joinSession(session.id));
    join.hidden = true;
    join.className = "small join";
    const row = element(
      "li",
      { dataset: { sessionId: session.id, status: session.status } },
      element("strong", {}, other.full_name),
      ` ${when(session.scheduled_start)} · ${session.status} · payment ${session.payment_status} `,
      button("Can I join?", () => checkJoin(session.id, row)),
      join,
      reason,
    );
    list.append(row);
  }
}

// GET sessions/<id>/can-join/ -> {can_join, reason, minutes_until_start, window: {opens_at, closes_at}}:
// the same rule the join applies, so the button shows what joining would answer.
const REASONS = {
  NOT_PARTICIPANT: "You are not a participant of this session.",
  SESSION_CANCELLED: "The session was cancelled.",
  SESSION_COMPLETED: "The session is over.",
  NOT_CONFIRMED: "The doctor has not confirmed the session yet.",
  PAYMENT_PENDING: "The session is not paid yet.",
  TOO_EARLY: "Too early.",
  WINDOW_CLOSED: "The join window has closed.",
};

async function checkJoin(sessionId, row) {
  const answer = await state.api.get(`sessions/${sessionId}/can-join/`);
  const text = row.querySelector(".can-join");
  row.dataset.canJoin = String(answer.can_join);
  row.dataset.reason = answer.reason || "";
  row.querySelector(".join").hidden = !answer.can_join;
  if (answer.can_join) {
    text.textContent = `You can join now (open until ${when(answer.window.closes_at)}).`;
  } else {
    let why = REASONS[answer.reason] || answer.reason;
    if (answer.reason === "TOO_EARLY") why += ` It opens ${when(answer.window.opens_at)}, in ${answer.minutes_until_start} min before the start.`;
    text.textContent = why;
  }
}

// POST sessions/<id>/room/ makes (201) or finds (200) the session's call; then join it.
async function joinSession(sessionId) {
  const call = await state.api.post(`sessions/${sessionId}/room/`);
  await startCall(call.id);
}

async function startCall(callId) {
  if (state.call && state.call.status !== "ended" && state.call.callId !== callId) {
    throw new Error("Leave the current call first.");
  }
  state.call = new CallSession({ api: state.api, realtime: state.realtime, me: state.me, callId, ui });
  window.telehealthDemo.call = state.call;
  await state.call.join();
}

// --- The doctor's waiting-room queue --------------------------------------------------------

async function loadQueue() {
  if (!state.me || state.me.role === "patient") return;
  const queue = await state.api.get("calls/waiting-room/?page_size=50");
  const list = $("#queue-list");
  list.replaceChildren();
  for (const entry of queue.results) {
    state.people.set(entry.user.id, entry.user.name);
    list.append(
      element(
        "li",
        { dataset: { callId: entry.call_id, userId: entry.user.id } },
        element("strong", {}, entry.user.name),
        ` waiting since ${when(entry.waiting_since)} `,
        entry.scheduled_start ? `(session at ${when(entry.scheduled_start)}) ` : "",
        button("Admit", () => admit(entry.call_id, entry.user.id), "small admit"),
      ),
    );
  }
  show("#queue-empty", queue.results.length === 0);
}

// POST calls/<id>/participants/<user>/admit/: the patient hears waiting_room.admitted and joins.
async function admit(callId, userId) {
  await state.api.post(`calls/${callId}/participants/${userId}/admit/`);
  await loadQueue();
}

async function sendBack(callId, userId) {
  await state.api.post(`calls/${callId}/participants/${userId}/send-back/`);
  await loadQueue();
}

// --- Ringing (ad-hoc calls) -----------------------------------------------------------------

async function loadContacts() {
  const contacts = await state.api.get("contacts/?page_size=50");
  const list = $("#contacts-list");
  list.replaceChildren();
  if (!contacts.results.length) list.append(element("li", { className: "muted" }, "Nobody to ring yet."));
  for (const contact of contacts.results) {
    const name = `${contact.first_name} ${contact.last_name}`.trim();
    state.people.set(contact.id, name);
    list.append(
      element(
        "li",
        { dataset: { userId: contact.id } },
        element("strong", {}, name),
        ` ${contact.role} `,
        button("Video call", () => ring(contact.id), "small ring"),
      ),
    );
  }
}

// call.initiate: the ack is the ringing call; both sides hear call.initiated.
async function ring(calleeId) {
  if (state.call && state.call.status !== "ended") throw new Error("Leave the current call first.");
  const call = await state.realtime.request("call.initiate", { callee_id: calleeId, media: "video" });
  showRinging({ callId: call.id, direction: "outgoing", otherId: calleeId });
}

function showRinging(ringing) {
  state.ringing = ringing;
  show("#ringing-panel", Boolean(ringing));
  if (!ringing) return;
  const name = state.people.get(ringing.otherId) || "Someone";
  $("#ringing-title").textContent = ringing.direction === "incoming" ? `${name} is calling…` : `Calling ${name}…`;
  $("#ringing-panel").dataset.direction = ringing.direction;
  show("#ringing-accept", ringing.direction === "incoming");
  show("#ringing-decline", ringing.direction === "incoming");
  show("#ringing-cancel", ringing.direction === "outgoing");
}

function wireRinging() {
  // call.accept answers the join payload: this socket is in the call at once.
  action($("#ringing-accept"), async () => {
    const { callId } = state.ringing;
    const answer = await state.realtime.request("call.accept", { call_id: callId });
    showRinging(null);
    state.call = new CallSession({ api: state.api, realtime: state.realtime, me: state.me, callId, ui });
    window.telehealthDemo.call = state.call;
    await state.call.accepted(answer);
  });
  action($("#ringing-decline"), async () => {
    await state.realtime.request("call.decline", { call_id: state.ringing.callId, reason: "declined" });
    showRinging(null);
  });
  action($("#ringing-cancel"), async () => {
    await state.realtime.request("call.hangup", { call_id: state.ringing.callId });
    showRinging(null);
  });
}

// --- Events ---------------------------------------------------------------------------------

async function onEvent(type, data) {
  if (type.startsWith("chat.")) {
    if (!state.call) return;
    if (type === "chat.message") state.call.chat.onMessage(data);
    else if (type === "chat.delivered" || type === "chat.read") state.call.chat.onReceipt(type, data);
    return;
  }
  if (type === "waiting_room.updated") return loadQueue();
  if (type.startsWith("session.")) return loadSessions();
  if (type === "presence.updated") {
    if (state.call && state.call.status === "waiting" && data.user_id === state.call.call.host_id) {
      await state.call.refreshWaiting();
    }
    return;
  }
  if (await ringingEvent(type, data)) return;
  if (state.call && state.call.status !== "ended") await state.call.onEvent(type, data);
}

async function ringingEvent(type, data) {
  const ringing = state.ringing;
  if (type === "call.initiated") {
    if (data.callee.id === state.me.id) showRinging({ callId: data.call_id, direction: "incoming", otherId: data.caller.id });
    return true;
  }
  if (!ringing || data.call_id !== ringing.callId) return false;
  if (type === "call.accepted" && ringing.direction === "outgoing") {
    // The callee answered: join on this socket; the answer has my media credentials, and as
    // the newcomer I offer.
    showRinging(null);
    await startCall(ringing.callId);
    return true;
  }
  if (["call.declined", "call.cancelled", "call.missed"].includes(type)) {
    const what = { "call.declined": "declined", "call.cancelled": "cancelled", "call.missed": "not answered" }[type];
    notice(`The call was ${what}.`);
    showRinging(null);
    return true;
  }
  if (type === "call.accepted") {
    showRinging(null); // answered on another device of mine
    return true;
  }
  return false;
}

// --- The call view (call.js calls these) ----------------------------------------------------

const HOST_STATUS = {
  in_call: "Your doctor is in the call and will let you in.",
  busy: "Your doctor is busy with someone else.",
  online: "Your doctor is online.",
  away: "Your doctor is away.",
  offline: "Your doctor is not online yet.",
};

const ui = {
  waiting(session, waiting) {
    show("#call-panel", false);
    show("#ended-panel", false);
    show("#waiting-panel", true);
    $("#waiting-panel").dataset.position = String(waiting.position ?? "");
    const position = waiting.position ? `You are number ${waiting.position} in the queue. ` : "";
    $("#waiting-status").textContent = position + (HOST_STATUS[waiting.host_status] || "");
  },

  inCall(session) {
    show("#waiting-panel", false);
    show("#ended-panel", false);
    show("#call-panel", true);
    $("#call-panel").dataset.status = session.status;
    const other = session.others()[0] || [...session.participants.values()].find((p) => p.user.id !== state.me.id);
    $("#call-title").textContent = session.call.kind === "session" ? "Consultation" : `Call with ${other ? other.display_name : "…"}`;
    $("#local-video").srcObject = session.localStream;
    show("#end-call", session.isHost && session.call.kind !== "ad_hoc");
    $("#leave-call").textContent = session.call.kind === "ad_hoc" ? "Hang up" : "Leave";
    show("#toggle-screen", session.canShareScreen && session.call.settings.screen_share_enabled);
    ui.participants(session);
  },

  remoteStream(session, userId, stream) {
    const tile = remoteTile(session, userId);
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
  },

  participants(session) {
    if (session.status !== "joined") return;
    const mine = session.myParticipant;
    $("#local-media-state").textContent = mediaText(mine, session.screen !== null);
    const audio = $("#toggle-audio");
    audio.textContent = session.audioEnabled ? "Mute microphone" : "Unmute microphone";
    audio.setAttribute("aria-pressed", String(session.audioEnabled));
    const video = $("#toggle-video");
    video.textContent = session.videoEnabled ? "Turn camera off" : "Turn camera on";
    video.setAttribute("aria-pressed", String(session.videoEnabled));
    const screen = $("#toggle-screen");
    screen.textContent = session.screen ? "Stop sharing" : "Share screen";
    screen.setAttribute("aria-pressed", String(Boolean(session.screen)));
    for (const participant of session.participants.values()) {
      if (participant.user.id === state.me.id) continue;
      const present = ["joined", "admitted"].includes(participant.status);
      const existing = document.querySelector(`.tile.remote[data-user-id="${participant.user.id}"]`);
      if (!present && !session.peers.has(participant.user.id)) {
        if (existing) existing.remove();
        continue;
      }
      const tile = remoteTile(session, participant.user.id);
      const peer = session.peers.get(participant.user.id);
      const quality = session.remoteQuality.get(participant.user.id);
      tile.dataset.peerState = peer ? peer.state : "none";
      tile.querySelector(".name").textContent = participant.display_name;
      tile.querySelector(".media-state").textContent = mediaText(participant, participant.screen_sharing);
      tile.querySelector(".peer-state").textContent = peer ? peer.state : participant.status;
      tile.querySelector(".quality").textContent = quality ? `their connection: ${qualityText(quality)}` : "";
      const sendBackButton = tile.querySelector(".send-back");
      sendBackButton.hidden = !(
        session.isHost && session.call.kind !== "ad_hoc" && participant.role === "patient" && participant.status === "joined"
      );
    }
  },

  myQuality(_session, sample) {
    $("#my-quality").textContent = `Your connection: ${qualityText(sample)}`;
  },

  chat(session, messages) {
    const list = $("#chat-messages");
    list.replaceChildren();
    for (const message of messages) {
      const mine = message.sender_id === state.me.id;
      const sender = mine ? "You" : session.participants.get(message.sender_id)?.display_name || "Them";
      const item = element(
        "li",
        { className: mine ? "mine" : "theirs", dataset: { messageId: message.id, mine: String(mine) } },
        element("span", { className: "sender" }, `${sender}: `),
        element("span", { className: "body" }, message.body ?? "(deleted)"),
      );
      if (mine) {
        const receipt = receiptLabel(message);
        item.dataset.receipt = receipt;
        item.append(element("span", { className: "receipt" }, ` ${receipt}`));
      }
      list.append(item);
    }
    list.scrollTop = list.scrollHeight;
  },

  ended(session, summary) {
    show("#call-panel", false);
    show("#waiting-panel", false);
    show("#ended-panel", true);
    document.querySelectorAll(".tile.remote").forEach((tile) => tile.remove());
    $("#local-video").srcObject = null;
    const panel = $("#ended-panel");
    panel.dataset.reason = summary.reason || "";
    panel.dataset.durationSeconds = summary.durationSeconds ?? "";
    if (summary.reason === "left") $("#ended-summary").textContent = "You left the call.";
    else if (summary.reason === "removed") $("#ended-summary").textContent = "You were removed from the call.";
    else $("#ended-summary").textContent = `The call ended (${summary.reason}); it lasted ${duration(summary.durationSeconds)}.`;
    loadSessions().catch(() => {});
  },
};

function remoteTile(session, userId) {
  let tile = document.querySelector(`.tile.remote[data-user-id="${userId}"]`);
  if (!tile) {
    tile = $("#remote-tile-template").content.firstElementChild.cloneNode(true);
    tile.dataset.userId = userId;
    action(tile.querySelector(".send-back"), () => sendBack(session.callId, userId));
    $("#remote-tiles").append(tile);
  }
  return tile;
}

function mediaText(participant, sharing) {
  if (!participant) return "";
  const parts = [participant.audio_enabled ? "mic on" : "muted", participant.video_enabled ? "camera on" : "camera off"];
  if (sharing) parts.push("sharing screen");
  return `(${parts.join(", ")})`;
}

function qualityText(sample) {
  const figures = [];
  if (sample.rtt_ms !== null && sample.rtt_ms !== undefined) figures.push(`${sample.rtt_ms} ms round trip`);
  if (sample.packet_loss_percent !== null && sample.packet_loss_percent !== undefined) figures.push(`${Number(sample.packet_loss_percent)} % loss`);
  return `${sample.assessment || "unknown"}${figures.length ? ` (${figures.join(", ")})` : ""}`;
}

function wireCallControls() {
  action($("#toggle-audio"), () => state.call.setAudio(!state.call.audioEnabled));
  action($("#toggle-video"), () => state.call.setVideo(!state.call.videoEnabled));
  action($("#toggle-screen"), () => (state.call.screen ? state.call.stopScreenShare() : state.call.startScreenShare()));
  action($("#leave-call"), () => state.call.leave());
  action($("#end-call"), () => state.call.end());
  action($("#waiting-leave"), () => state.call.leave());
  action($("#ended-close"), async () => {
    show("#ended-panel", false);
    state.call = null;
  });
  action($("#sessions-refresh"), () => loadSessions());
  $("#chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = event.target.body;
    const body = input.value.trim();
    if (!body || !state.call) return;
    input.value = "";
    try {
      await state.call.chat.send(body);
    } catch (error) {
      notice(describe(error), "error");
    }
  });
  wireRinging();
}

// A handle for debugging and for the browser test (tests/e2e): the current call, and its
// peers' connection states and inbound video frames from getStats.
window.telehealthDemo = {
  call: null,
  stats: () => (state.call ? state.call.stats() : Promise.resolve({ status: "none", peers: [] })),
};

boot();
