// The web app's link to konami: the signed-in session (the token lives in this
// tab's session storage; an API key or password is never kept), the REST API,
// and a live list of channels fed by konami's event stream.

export const $ = (id) => document.getElementById(id);

export const session = {
  get token() { return sessionStorage.getItem('konami.token'); },
  get account() { return sessionStorage.getItem('konami.account'); },
  /** Set when a user (not the account's administrator) signed in. */
  get user() { return sessionStorage.getItem('konami.user'); },
  set(token, account, user) {
    sessionStorage.setItem('konami.token', token);
    sessionStorage.setItem('konami.account', account);
    if (user) sessionStorage.setItem('konami.user', user);
    else sessionStorage.removeItem('konami.user');
  },
  clear() {
    for (const k of ['konami.token', 'konami.account', 'konami.user']) sessionStorage.removeItem(k);
  },
};

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.fields = body?.data ?? {};
  }
}

/** Called when the token stops working (401): the app goes back to signing in. */
let onSignedOut = () => undefined;
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

export async function api(method, path, data) {
  const headers = { accept: 'application/json' };
  if (session.token) headers['x-auth-token'] = session.token;
  if (data !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: data === undefined ? undefined : JSON.stringify({ data }) });
  const body = await res.json().catch(() => undefined);
  if (res.status === 401 && session.token) {
    session.clear();
    onSignedOut();
  }
  if (!res.ok) throw new ApiFailure(res.status, body);
  return body;
}

export const accountPath = (rest) => `/v1/accounts/${session.account}${rest}`;

/** Where the signed-in party's calls are: the account's, or the user's own. */
export const callsPath = () => accountPath(session.user ? `/users/${session.user}` : '');

/** The first field message of an API failure, for a line under a form. */
export function failureText(err) {
  const field = Object.values(err.fields ?? {})[0];
  return `${err.message}${field ? `: ${Object.values(field)[0]?.message ?? ''}` : ''}`;
}

/**
 * The channels as they are now: read once, then kept up to date by the event
 * stream (read again whenever the stream reconnects, so nothing is missed).
 * `render` gets the channels after every change.
 */
export class LiveChannels {
  constructor(render, onError) {
    this.render = render;
    this.onError = onError;
    this.channels = new Map();
    this.source = undefined;
    /** Events held while the list is being read. */
    this.loading = undefined;
  }

  start() {
    this.stop();
    const url = `${callsPath()}/events?auth_token=${encodeURIComponent(session.token)}`;
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => void this.reload();
    // A stream konami refused (a token gone, too many streams) is not tried again by the browser:
    // reading the list says why (a 401 signs out) and shows it.
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return;
      this.onError(new Error('Live updates stopped: reload the page.'));
      void this.reload();
    };
    const apply = (e) => {
      const event = JSON.parse(e.data);
      // Events that come while the list is read are applied after it: they may be newer than it.
      if (this.loading) this.loading.push(event);
      else this.apply(event);
      this.render([...this.channels.values()]);
    };
    for (const name of ['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_BRIDGE', 'CHANNEL_TRANSFEROR', 'CHANNEL_TRANSFEREE', 'CHANNEL_DESTROY']) {
      source.addEventListener(name, apply);
    }
  }

  apply({ event_name: name, channel }) {
    if (name === 'CHANNEL_DESTROY') this.channels.delete(channel.id);
    else this.channels.set(channel.id, channel);
  }

  async reload() {
    this.loading = [];
    try {
      const { data } = await api('GET', `${callsPath()}/channels`);
      this.channels = new Map(data.map((c) => [c.id, c]));
      for (const event of this.loading) this.apply(event);
      this.render([...this.channels.values()]);
    } catch (err) {
      if (err.status !== 401) this.onError(err);
    } finally {
      this.loading = undefined;
    }
  }

  stop() {
    this.source?.close();
    this.source = undefined;
  }
}
