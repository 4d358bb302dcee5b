// The REST client: sign-in, token refresh, the error shape, retries on 429 and 503.
//
// Tokens (docs/api.md, "Accounts and authentication"): the access token lives 15 minutes and
// is kept in memory only; the refresh token rotates (each works once) and is kept in
// sessionStorage, so a reload of this tab can sign in again without the password, while other
// tabs and a closed browser cannot. A React client keeps the same split.

const REFRESH_KEY = "telehealth.refresh";
const MAX_ATTEMPTS = 4;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Full jitter over a window that doubles per attempt, on top of what the server asked for
// (docs/realtime.md, "How a client retries").
export function backoff(attempt, retryAfterSeconds = 0) {
  const window = Math.min(30, 0.5 * 2 ** attempt);
  return (retryAfterSeconds + Math.random() * window) * 1000;
}

// Every 4xx and 5xx has one shape: {"error": {"code", "message", "details", "request_id"}}
// (docs/errors.md). The code is what a client decides by; the message is for people.
export class ApiError extends Error {
  constructor(status, body, headers) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "HTTP_" + status;
    this.details = error.details || {};
    this.requestId = error.request_id || (headers && headers.get("X-Request-ID")) || null;
    this.retryAfter = Number((headers && headers.get("Retry-After")) || this.details.retry_after || 0);
  }
}

export class Api {
  constructor({ base = "/api/v1/", storage = window.sessionStorage, onSignedOut = () => {} } = {}) {
    this.base = base;
    this.storage = storage;
    this.onSignedOut = onSignedOut;
    this.access = null;
    this.user = null;
    this.refreshing = null; // one refresh at a time: a rotated refresh token works once
  }

  get signedIn() {
    return this.access !== null;
  }

  // POST auth/login/ -> {access, refresh, token_type, expires_in, user}
  async signIn(email, password) {
    const body = await this.request("POST", "auth/login/", { email, password }, { auth: false });
    this.keepTokens(body);
    this.user = body.user;
    return this.user;
  }

  // After a reload: trade the stored refresh token for a new pair, then read who we are.
  async restore() {
    if (!this.storage.getItem(REFRESH_KEY)) return null;
    try {
      await this.refresh();
      this.user = await this.get("me/");
      return this.user;
    } catch (error) {
      this.forget();
      if (error instanceof ApiError && error.status === 401) return null;
      throw error;
    }
  }

  // POST auth/logout/ revokes every token of the user on every device.
  async signOut() {
    try {
      if (this.access) await this.request("POST", "auth/logout/");
    } finally {
      this.forget();
    }
  }

  keepTokens({ access, refresh }) {
    this.access = access;
    this.storage.setItem(REFRESH_KEY, refresh);
  }

  forget() {
    this.access = null;
    this.user = null;
    this.storage.removeItem(REFRESH_KEY);
  }

  // POST auth/token/refresh/ {refresh} -> a new pair; the old refresh token stops working.
  refresh() {
    if (!this.refreshing) {
      const refresh = this.storage.getItem(REFRESH_KEY);
      this.refreshing = (async () => {
        if (!refresh) throw new ApiError(401, { error: { code: "TOKEN_INVALID", message: "Signed out." } });
        const body = await this.request("POST", "auth/token/refresh/", { refresh }, { auth: false });
        this.keepTokens(body);
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  patch(path, body) {
    return this.request("PATCH", path, body);
  }

  // One request, answered as parsed JSON (null for 204). A 401 on a signed-in request refreshes
  // the tokens once and tries again; 429 and 503 are waited out (Retry-After plus jitter) a few
  // times: a 503 means nothing was done, so repeating a POST is safe. Any other error throws.
  async request(method, path, body, { auth = true } = {}) {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (auth && this.access) headers.Authorization = `Bearer ${this.access}`;
      const response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", // tokens, not cookies: no CSRF surface
        cache: "no-store",
      });
      if (response.ok) return response.status === 204 ? null : response.json();
      const error = new ApiError(response.status, await response.json().catch(() => null), response.headers);
      if (response.status === 401 && auth && !refreshed && this.storage.getItem(REFRESH_KEY)) {
        refreshed = true;
        try {
          await this.refresh();
        } catch {
          this.forget();
          this.onSignedOut("Your sign-in has expired.");
          throw error;
        }
        continue;
      }
      if ((response.status === 429 || response.status === 503) && attempt + 1 < MAX_ATTEMPTS) {
        await sleep(backoff(attempt, error.retryAfter));
        continue;
      }
      throw error;
    }
  }

  // Every page of a paginated list ({count, next, previous, results}), following `next`.
  async all(path, { limit = 500 } = {}) {
    const results = [];
    let page = await this.get(path);
    results.push(...page.results);
    while (page.next && results.length < limit) {
      const next = new URL(page.next, window.location.href);
      page = await this.get(next.pathname.slice(this.base.length) + next.search);
      results.push(...page.results);
    }
    return results;
  }
}
