// konami's web app: sign in with the account's API key, switch the transfer
// and resume features on, and watch and transfer the account's live calls.
// It only uses the REST API. The API key is sent once and never kept; the
// token it is exchanged for lives in this tab's session storage.

const $ = (id) => document.getElementById(id);
const session = {
  get token() { return sessionStorage.getItem('konami.token'); },
  get account() { return sessionStorage.getItem('konami.account'); },
  set(token, account) {
    sessionStorage.setItem('konami.token', token);
    sessionStorage.setItem('konami.account', account);
  },
  clear() {
    sessionStorage.removeItem('konami.token');
    sessionStorage.removeItem('konami.account');
  },
};

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.fields = body?.data ?? {};
  }
}

async function api(method, path, data) {
  const headers = { accept: 'application/json' };
  if (session.token) headers['x-auth-token'] = session.token;
  if (data !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: data === undefined ? undefined : JSON.stringify({ data }) });
  const body = await res.json().catch(() => undefined);
  if (res.status === 401 && session.token) {
    session.clear();
    route();
  }
  if (!res.ok) throw new ApiFailure(res.status, body);
  return body;
}

const accountPath = (rest) => `/v1/accounts/${session.account}${rest}`;

// ---- pages ----

const pages = ['sign-in', 'features', 'calls'];
let poller;

function show(page) {
  for (const p of pages) $(`page-${p}`).hidden = p !== page;
  $('nav').hidden = page === 'sign-in';
  for (const p of ['calls', 'features']) {
    if (p === page) $(`nav-${p}`).setAttribute('aria-current', 'page');
    else $(`nav-${p}`).removeAttribute('aria-current');
  }
  clearInterval(poller);
  poller = undefined;
  if (page === 'calls') {
    void refreshCalls();
    poller = setInterval(() => void refreshCalls(), 1000);
  }
  if (page === 'features') void loadFeatures();
  const heading = $(`page-${page}`).querySelector('h2');
  heading.tabIndex = -1;
  heading.focus();
}

function route() {
  if (!session.token) return show('sign-in');
  show(location.hash === '#features' ? 'features' : 'calls');
}

// ---- sign in ----

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('api-key');
  $('api-key-error').textContent = '';
  try {
    const r = await api('PUT', '/v1/api_auth', { api_key: input.value.trim() });
    session.set(r.auth_token, r.data.account_id);
    input.value = '';
    if (location.hash !== '#calls') location.hash = '#calls';
    else route();
  } catch (err) {
    $('api-key-error').textContent = err.status === 401 ? 'That API key is not valid.' : err.message;
  }
});

// Signing out revokes the token at the server, so a copy of it is useless too.
$('sign-out').addEventListener('click', async () => {
  await api('DELETE', '/v1/token_auth').catch(() => undefined);
  session.clear();
  location.hash = '';
  route();
});

window.addEventListener('hashchange', route);

// ---- features ----

const FIELDS = ['transfer-code', 'resume-code', 'binding-digit', 'digit-timeout', 'listen-on', 'ring-timeout', 'moh-class', 'metaflows-json'];

function clearErrors() {
  for (const f of FIELDS) $(`${f}-error`).textContent = '';
  $('features-error').textContent = '';
  $('features-saved').textContent = '';
}

/** The input a field of the API's validation answer belongs to. */
function inputOf(field) {
  if (field === 'binding_digit') return 'binding-digit';
  if (field === 'digit_timeout') return 'digit-timeout';
  if (field === 'listen_on') return 'listen-on';
  const within = (key) => field === key || field.startsWith(`${key}.`);
  if (within(`patterns.${escapeRegex($('transfer-code').value)}${TRANSFER_SUFFIX}`)) {
    if (field.endsWith('.data.ring_timeout')) return 'ring-timeout';
    if (field.endsWith('.data.moh')) return 'moh-class';
    return 'transfer-code';
  }
  if (within(`numbers.${$('resume-code').value}`)) return 'resume-code';
  return undefined;
}

function escapeRegex(code) {
  return code.replace(/[\\^$.*+?()[\]{}|]/g, (c) => `\\${c}`);
}

const TRANSFER_SUFFIX = '(\\d+)';

/** The metaflows as last loaded: saving changes only what this page shows, and keeps the rest. */
let loaded = {};

/** The first code of `module` in a table: [key, action], or undefined. */
function codeOf(table, module) {
  return Object.entries(table ?? {}).find(([, a]) => a.module === module);
}

/** A copy of `table` with the entry at `oldKey` replaced by `key: action` in the same place (added last if new, removed if action is null). */
function replaceCode(table, oldKey, key, action) {
  const out = {};
  let placed = false;
  for (const [k, v] of Object.entries(table ?? {})) {
    if (k === oldKey) {
      if (action) out[key] = action;
      placed = true;
    } else if (k !== key) out[k] = v;
  }
  if (!placed && action) out[key] = action;
  return out;
}

function showFeatures(m) {
  const transfer = codeOf(m.patterns, 'transfer');
  const resume = codeOf(m.numbers, 'resume');
  $('transfer-on').checked = Boolean(transfer);
  $('resume-on').checked = Boolean(resume);
  if (transfer) $('transfer-code').value = transfer[0].endsWith(TRANSFER_SUFFIX) ? transfer[0].slice(0, -TRANSFER_SUFFIX.length).replace(/\\(.)/g, '$1') : transfer[0];
  if (resume) $('resume-code').value = resume[0];
  $('binding-digit').value = m.binding_digit ?? '*';
  $('digit-timeout').value = String(m.digit_timeout ?? 2000);
  $('listen-on').value = m.listen_on ?? 'both';
  $('ring-timeout').value = String(transfer?.[1].data?.ring_timeout ?? 20);
  $('moh-class').value = transfer?.[1].data?.moh ?? transfer?.[1].data?.moh_class ?? 'default';
  $('metaflows-json').value = JSON.stringify(m, null, 2);
  updateBinding();
}

async function loadFeatures() {
  clearErrors();
  try {
    const { data } = await api('GET', accountPath('/metaflows'));
    loaded = data ?? {};
    showFeatures(loaded);
  } catch (err) {
    $('features-error').textContent = err.message;
  }
}

function updateBinding() {
  for (const el of document.querySelectorAll('.binding')) el.textContent = $('binding-digit').value || '*';
}
$('binding-digit').addEventListener('input', updateBinding);

const asNumber = (v) => (v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v));

/** The loaded metaflows with what the form shows put in: other codes and other settings stay as they were. */
function metaflowsFromForm() {
  const m = JSON.parse(JSON.stringify(loaded));
  m.binding_digit = $('binding-digit').value;
  m.digit_timeout = asNumber($('digit-timeout').value);
  m.listen_on = $('listen-on').value;
  const transfer = codeOf(m.patterns, 'transfer');
  if ($('transfer-on').checked) {
    const data = { ...(transfer?.[1].data ?? {}), ring_timeout: asNumber($('ring-timeout').value), moh: $('moh-class').value };
    delete data.moh_class;
    m.patterns = replaceCode(m.patterns, transfer?.[0], `${escapeRegex($('transfer-code').value)}${TRANSFER_SUFFIX}`, { ...transfer?.[1], module: 'transfer', data });
  } else if (transfer) m.patterns = replaceCode(m.patterns, transfer[0], transfer[0], null);
  const resume = codeOf(m.numbers, 'resume');
  if ($('resume-on').checked) m.numbers = replaceCode(m.numbers, resume?.[0], $('resume-code').value, resume?.[1] ?? { module: 'resume' });
  else if (resume) m.numbers = replaceCode(m.numbers, resume[0], resume[0], null);
  return m;
}

async function saveMetaflows(metaflows, from) {
  clearErrors();
  try {
    const { data } = await api('POST', accountPath('/metaflows'), metaflows);
    loaded = data ?? {};
    showFeatures(loaded);
    $('features-saved').textContent = 'Saved.';
  } catch (err) {
    let placed = false;
    for (const [field, rules] of Object.entries(err.fields ?? {})) {
      const input = from === 'form' ? inputOf(field) : undefined;
      const message = Object.values(rules)[0]?.message ?? 'is not valid';
      if (input) {
        $(`${input}-error`).textContent = message;
        placed = true;
      }
    }
    const detail = Object.entries(err.fields ?? {}).map(([f, r]) => `${f} ${Object.values(r)[0]?.message ?? ''}`).join('; ');
    if (from === 'json') $('metaflows-json-error').textContent = `Not saved: ${detail || err.message}`;
    else $('features-error').textContent = placed ? 'Not saved: see the fields above.' : `Not saved: ${detail || err.message}`;
  }
}

$('features-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void saveMetaflows(metaflowsFromForm(), 'form');
});

// The whole metaflows as JSON, for what the form does not show: Kazoo's or the specification's shape is taken as written.
$('metaflows-json-save').addEventListener('click', () => {
  let parsed;
  try {
    parsed = JSON.parse($('metaflows-json').value);
  } catch (err) {
    clearErrors();
    $('metaflows-json-error').textContent = `This is not JSON: ${err.message}`;
    return;
  }
  void saveMetaflows(parsed, 'json');
});

// ---- calls ----

const STATE = {
  calling: 'ringing',
  consulting: 'talking to target',
  partial: 'ringing (transferor left)',
  recalling: 'calling the transferor back',
  recall_wait: 'calling the transferor back',
  transferee_gone: 'ringing (held party left)',
};
const OUTCOME = {
  completed: 'completed', recalled: 'completed (transferor called back)', failed: 'failed', cancelled: 'cancelled',
  target_hung_up: 'target hung up', transferee_gone: 'held party left', recall_failed: 'failed', abandoned: 'ended',
};

/** A party as people say it: "Alice (1001)", or the number alone. */
function partyName(id) {
  if (!id) return 'unknown';
  return id.name ? `${id.name} (${id.number})` : id.number || 'unknown';
}

/** The account's channels as calls: one per call, with its caller (a) and called party (b). */
function callsOf(channels) {
  const calls = new Map();
  for (const c of channels) {
    const call = calls.get(c.call_id) ?? { id: c.call_id };
    call[c.direction === 'inbound' ? 'a' : 'b'] = c;
    calls.set(c.call_id, call);
  }
  return [...calls.values()].map((call) => {
    const any = call.a ?? call.b;
    return {
      ...call,
      names: { a: partyName(any.caller_id), b: partyName(any.callee_id) },
      state: any.state,
      transfer: any.transfer,
      last: any.last_transfer,
    };
  });
}

/** Who a transfer moves: the party whose channel is its transferee. */
function movedBy(call, t) {
  return t.transferee === call.a?.id ? call.names.a : t.transferee === call.b?.id ? call.names.b : 'the other party';
}

function transferText(call) {
  if (call.transfer) return `Transferring ${movedBy(call, call.transfer)} to ${call.transfer.target}: ${STATE[call.transfer.state] ?? call.transfer.state}`;
  if (call.last) return `Last transfer to ${call.last.target}: ${OUTCOME[call.last.outcome] ?? call.last.outcome}`;
  return '';
}

function callItem(call) {
  const li = document.createElement('li');
  li.dataset.id = call.id;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = `${call.names.a} → ${call.names.b}`;
  const state = document.createElement('div');
  state.className = 'state';
  state.textContent = `${call.state}${transferText(call) ? ` · ${transferText(call)}` : ''}`;
  state.dataset.role = 'transfer-state';
  li.append(who, state);
  if (call.state === 'answered' && !call.transfer && call.a && call.b) {
    const form = document.createElement('form');
    const label = document.createElement('label');
    const inputId = `target-${call.id}`;
    label.htmlFor = inputId;
    label.textContent = 'Transfer to';
    const input = document.createElement('input');
    input.id = inputId;
    input.inputMode = 'tel';
    input.autocomplete = 'off';
    form.append(label, input);
    // One button per party, naming who is moved; the other party is the one who hands over.
    for (const [moved, by] of [['a', 'b'], ['b', 'a']]) {
      const button = document.createElement('button');
      button.type = 'submit';
      button.textContent = `Transfer ${call.names[moved]}`;
      button.dataset.by = call[by].id;
      form.append(button);
    }
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const by = e.submitter?.dataset.by ?? call.b.id;
      await act(by, { action: 'transfer', target: input.value.trim() });
    });
    li.append(form);
  }
  if (call.transfer) {
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary';
    cancel.textContent = 'Cancel transfer';
    // Any party still in the call may carry the request: the transfer is the call's.
    cancel.addEventListener('click', () => void act((call.a ?? call.b).id, { action: 'cancel' }));
    li.append(cancel);
  }
  return li;
}

async function act(id, data) {
  $('calls-error').textContent = '';
  try {
    await api('POST', accountPath(`/channels/${encodeURIComponent(id)}`), data);
  } catch (err) {
    const field = Object.values(err.fields ?? {})[0];
    $('calls-error').textContent = `${err.message}${field ? `: ${Object.values(field)[0]?.message ?? ''}` : ''}`;
  }
  await refreshCalls();
}

let lastRender = '';
async function refreshCalls() {
  if (!session.token) return;
  try {
    const { data } = await api('GET', accountPath('/channels'));
    // Re-render only when something changed, so typing in a field is not interrupted.
    const calls = callsOf(data);
    const render = JSON.stringify(calls.map((c) => [c.id, c.a?.id, c.b?.id, c.state, c.transfer, c.last]));
    if (render === lastRender) return;
    const focused = document.activeElement?.id;
    const typed = focused ? document.activeElement.value : undefined;
    lastRender = render;
    $('calls-empty').hidden = calls.length > 0;
    $('calls').replaceChildren(...calls.map(callItem));
    if (focused && $(focused)) {
      $(focused).focus();
      if (typed !== undefined) $(focused).value = typed;
    }
  } catch (err) {
    if (err.status !== 401) $('calls-error').textContent = err.message;
  }
}

route();
