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

const FIELDS = ['transfer-code', 'resume-code', 'binding-digit', 'digit-timeout', 'listen-on', 'ring-timeout', 'moh-class'];

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
  if (field.startsWith('patterns.')) {
    if (field.endsWith('.data.ring_timeout')) return 'ring-timeout';
    if (field.endsWith('.data.moh_class')) return 'moh-class';
    return 'transfer-code';
  }
  if (field.startsWith('numbers.')) return 'resume-code';
  return undefined;
}

function escapeRegex(code) {
  return code.replace(/[\\^$.*+?()[\]{}|]/g, (c) => `\\${c}`);
}

async function loadFeatures() {
  clearErrors();
  try {
    const { data } = await api('GET', accountPath('/metaflows'));
    const m = data ?? {};
    const transfer = Object.entries(m.patterns ?? {}).find(([, a]) => a.module === 'transfer');
    const resume = Object.entries(m.numbers ?? {}).find(([, a]) => a.module === 'resume');
    $('transfer-on').checked = Boolean(transfer);
    $('resume-on').checked = Boolean(resume);
    if (transfer) $('transfer-code').value = transfer[0].replace(/\(\\d\+\)$/, '').replace(/\\(.)/g, '$1');
    if (resume) $('resume-code').value = resume[0];
    $('binding-digit').value = m.binding_digit ?? '*';
    $('digit-timeout').value = String(m.digit_timeout ?? 2000);
    $('listen-on').value = m.listen_on ?? 'both';
    $('ring-timeout').value = String(transfer?.[1].data?.ring_timeout ?? 20);
    $('moh-class').value = transfer?.[1].data?.moh_class ?? 'default';
    updateBinding();
  } catch (err) {
    $('features-error').textContent = err.message;
  }
}

function updateBinding() {
  for (const el of document.querySelectorAll('.binding')) el.textContent = $('binding-digit').value || '*';
}
$('binding-digit').addEventListener('input', updateBinding);

const asNumber = (v) => (v.trim() === '' || Number.isNaN(Number(v)) ? v : Number(v));

$('features-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const metaflows = {
    binding_digit: $('binding-digit').value,
    digit_timeout: asNumber($('digit-timeout').value),
    listen_on: $('listen-on').value,
    numbers: {},
    patterns: {},
  };
  if ($('resume-on').checked) metaflows.numbers[$('resume-code').value] = { module: 'resume' };
  if ($('transfer-on').checked) {
    metaflows.patterns[`${escapeRegex($('transfer-code').value)}(\\d+)`] = {
      module: 'transfer',
      data: { ring_timeout: asNumber($('ring-timeout').value), moh_class: $('moh-class').value },
    };
  }
  try {
    await api('POST', accountPath('/metaflows'), metaflows);
    $('features-saved').textContent = 'Saved.';
  } catch (err) {
    let placed = false;
    for (const [field, rules] of Object.entries(err.fields ?? {})) {
      const input = inputOf(field);
      const message = Object.values(rules)[0]?.message ?? 'is not valid';
      if (input) {
        $(`${input}-error`).textContent = message;
        placed = true;
      }
    }
    $('features-error').textContent = placed ? 'Not saved: see the fields above.' : err.message;
  }
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

function transferText(c) {
  if (c.transfer) return `Transfer to ${c.transfer.target}: ${STATE[c.transfer.state] ?? c.transfer.state}`;
  if (c.last_transfer) return `Last transfer to ${c.last_transfer.target}: ${OUTCOME[c.last_transfer.outcome] ?? c.last_transfer.outcome}`;
  return '';
}

function callItem(c) {
  const li = document.createElement('li');
  li.dataset.id = c.id;
  const who = document.createElement('div');
  who.className = 'who';
  const caller = c.caller_id.name ? `${c.caller_id.name} (${c.caller_id.number})` : c.caller_id.number || 'unknown';
  who.textContent = `${caller} → ${c.callee_id.number || 'unknown'} · ${c.direction === 'inbound' ? 'caller side' : 'called side'}`;
  const state = document.createElement('div');
  state.className = 'state';
  state.textContent = `${c.state}${transferText(c) ? ` · ${transferText(c)}` : ''}`;
  state.dataset.role = 'transfer-state';
  li.append(who, state);
  if (c.state === 'answered' && !c.transfer) {
    const form = document.createElement('form');
    const label = document.createElement('label');
    const inputId = `target-${c.id}`;
    label.htmlFor = inputId;
    label.textContent = 'Transfer to';
    const input = document.createElement('input');
    input.id = inputId;
    input.inputMode = 'tel';
    input.autocomplete = 'off';
    const button = document.createElement('button');
    button.type = 'submit';
    button.textContent = 'Transfer';
    form.append(label, input, button);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      await act(c.id, { action: 'transfer', target: input.value.trim() });
    });
    li.append(form);
  }
  if (c.transfer) {
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary';
    cancel.textContent = 'Cancel transfer';
    cancel.addEventListener('click', () => void act(c.id, { action: 'cancel' }));
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
    const render = JSON.stringify(data.map((c) => [c.id, c.state, c.transfer, c.last_transfer]));
    if (render === lastRender) return;
    const focused = document.activeElement?.id;
    const typed = focused ? document.activeElement.value : undefined;
    lastRender = render;
    $('calls-empty').hidden = data.length > 0;
    $('calls').replaceChildren(...data.map(callItem));
    if (focused && $(focused)) {
      $(focused).focus();
      if (typed !== undefined) $(focused).value = typed;
    }
  } catch (err) {
    if (err.status !== 401) $('calls-error').textContent = err.message;
  }
}

route();
