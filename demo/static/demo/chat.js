// A call's chat (docs/messaging.md, docs/realtime.md "Chat"): the call's conversation, sending
// with a client key, delivered and read receipts, and catching up after a reconnect.
//
// - The conversation: POST conversations/ {call_id} opens it (201) or finds it (200).
// - Sending: chat.send with a client_message_id. If the socket drops before the ack, the same
//   message is sent again with the same key after reconnecting: the server answers the stored
//   one and tells nobody twice.
// - Receipts: a message from someone else is marked delivered when it arrives and read while
//   the page is visible (chat.delivered / chat.read, up to that message). The sender hears
//   chat.delivered / chat.read events naming its messages.
// - Catching up: GET conversations/<id>/messages/?after=<last id I have> (oldest first), or,
//   with nothing in memory (a reload), the newest page.

export class CallChat {
  constructor({ api, realtime, me, callId, onChange }) {
    this.api = api;
    this.realtime = realtime;
    this.me = me;
    this.callId = callId;
    this.onChange = onChange; // (messages) => void, oldest first
    this.conversationId = null;
    this.messages = new Map(); // id -> message, as the server answers it
    this.unsent = new Map(); // client_message_id -> {body, error}
    this.readUpTo = null;
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  async open() {
    const conversation = await this.api.post("conversations/", { call_id: this.callId });
    this.conversationId = conversation.id;
    await this.catchUp();
  }

  get ordered() {
    return [...this.messages.values()].sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  }

  async catchUp() {
    if (!this.conversationId) return this.open();
    const known = this.ordered;
    const base = `conversations/${this.conversationId}/messages/`;
    if (known.length) {
      const later = await this.api.all(`${base}?after=${known[known.length - 1].id}&page_size=100`);
      later.forEach((message) => this.keep(message));
    } else {
      const newest = await this.api.get(`${base}?page_size=100`); // newest first
      newest.results.forEach((message) => this.keep(message));
    }
    await this.resendUnsent();
    this.changed();
    await this.markRead();
  }

  keep(message) {
    if (message.conversation_id !== this.conversationId) return false;
    this.messages.set(message.id, message);
    if (message.sender_id === this.me && message.client_message_id) this.unsent.delete(message.client_message_id);
    return true;
  }

  async send(body) {
    const key = `${this.me.slice(0, 8)}-${crypto.randomUUID()}`;
    this.unsent.set(key, { body, error: null });
    this.changed();
    await this.sendOne(key);
  }

  async sendOne(key) {
    const pending = this.unsent.get(key);
    if (!pending) return;
    try {
      const { message } = await this.realtime.request("chat.send", {
        conversation_id: this.conversationId,
        body: pending.body,
        client_message_id: key,
      });
      this.keep(message);
    } catch (error) {
      // Disconnected: sent again after the reconnect. Refused: shown with the reason.
      if (!["DISCONNECTED", "TIMEOUT", "SERVICE_UNAVAILABLE"].includes(error.code)) pending.error = error.message;
    }
    this.changed();
  }

  async resendUnsent() {
    for (const [key, pending] of this.unsent) if (!pending.error) await this.sendOne(key);
  }

  // chat.message: the sender's own connections hear it too (deduplicated by id).
  onMessage(message) {
    if (!this.keep(message)) return;
    this.changed();
    if (message.sender_id !== this.me) {
      this.realtime
        .request("chat.delivered", { conversation_id: this.conversationId, message_id: message.id })
        .catch(() => {});
      this.markRead();
    }
  }

  // chat.delivered / chat.read: {conversation_id, user_id, message_ids, at}
  onReceipt(type, data) {
    if (data.conversation_id !== this.conversationId || data.user_id === this.me) return;
    const status = type === "chat.read" ? "read" : "delivered";
    for (const id of data.message_ids) {
      const message = this.messages.get(id);
      if (!message) continue;
      const receipt = message.receipts.find((r) => r.user_id === data.user_id);
      if (!receipt) continue;
      if (status === "read") {
        receipt.status = "read";
        receipt.read_at = data.at;
        receipt.delivered_at = receipt.delivered_at || data.at;
      } else if (receipt.status === "sent") {
        receipt.status = "delivered";
        receipt.delivered_at = data.at;
      }
    }
    this.changed();
  }

  // Everything up to the newest message from someone else is read, once the page is visible.
  async markRead() {
    if (document.visibilityState !== "visible" || !this.conversationId) return;
    const theirs = this.ordered.filter((m) => m.sender_id !== this.me);
    const last = theirs[theirs.length - 1];
    if (!last || last.id === this.readUpTo) return;
    const mine = last.receipts.find((r) => r.user_id === this.me);
    if (mine && mine.status === "read") {
      this.readUpTo = last.id;
      return;
    }
    try {
      await this.realtime.request("chat.read", { conversation_id: this.conversationId, message_id: last.id });
      this.readUpTo = last.id;
      for (const message of theirs) {
        const receipt = message.receipts.find((r) => r.user_id === this.me);
        if (receipt) receipt.status = "read";
      }
    } catch {
      // retried on the next message, visibility change or catch-up
    }
  }

  changed() {
    const pending = [...this.unsent].map(([key, { body, error }]) => ({
      id: key,
      sender_id: this.me,
      body,
      pending: true,
      error,
      receipts: [],
    }));
    this.onChange([...this.ordered, ...pending]);
  }
}

// What the sender sees of a message: the most advanced receipt of the others.
export function receiptLabel(message) {
  if (message.pending) return message.error ? `not sent: ${message.error}` : "sending…";
  const statuses = (message.receipts || []).map((r) => r.status);
  if (statuses.length && statuses.every((s) => s === "read")) return "read";
  if (statuses.length && statuses.every((s) => s !== "sent")) return "delivered";
  return "sent";
}
