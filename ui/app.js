// konami's web app. An account's administrator signs in with the account's API
// key: Calls (every call of the account, live), Features (codes) and Users.
// A user signs in with their account, username and password: My calls (their
// own calls, live) with a Transfer button. It only uses the REST API. The key
// or password is sent once and never kept; the token lives in this tab's
// session storage.
import { $, api, session, whenSignedOut } from './api.js';
import { accountCalls } from './calls.js';
import { loadFeatures } from './features.js';
import { myCalls } from './mine.js';
import { loadUsers } from './users.js';

const pages = ['sign-in', 'features', 'calls', 'users', 'mine'];
const ADMIN = ['calls', 'features', 'users'];

function show(page) {
  for (const p of pages) $(`page-${p}`).hidden = p !== page;
  $('nav').hidden = page === 'sign-in';
  for (const p of ADMIN) {
    $(`nav-${p}`).hidden = Boolean(session.user);
    if (p === page) $(`nav-${p}`).setAttribute('aria-current', 'page');
    else $(`nav-${p}`).removeAttribute('aria-current');
  }
  accountCalls.stop();
  myCalls.stop();
  if (page === 'calls') accountCalls.start();
  if (page === 'mine') myCalls.start();
  if (page === 'features') void loadFeatures();
  if (page === 'users') void loadUsers();
  const heading = $(`page-${page}`).querySelector('h2');
  heading.tabIndex = -1;
  heading.focus();
}

function route() {
  if (!session.token) return show('sign-in');
  if (session.user) return show('mine');
  const page = location.hash.slice(1);
  show(ADMIN.includes(page) ? page : 'calls');
}
whenSignedOut(route);

// ---- sign in: the account's administrator, or a user ----

function signedIn(r, user) {
  session.set(r.auth_token, r.data.account_id, user ? r.data.owner_id : undefined);
  const page = user ? '#mine' : '#calls';
  if (location.hash !== page) location.hash = page;
  else route();
}

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('api-key');
  $('api-key-error').textContent = '';
  try {
    const r = await api('PUT', '/v1/api_auth', { api_key: input.value.trim() });
    input.value = '';
    signedIn(r, false);
  } catch (err) {
    $('api-key-error').textContent = err.status === 401 ? 'That API key is not valid.' : err.message;
  }
});

$('user-sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('user-sign-in-error').textContent = '';
  const account = $('sign-in-account').value.trim();
  const data = { username: $('sign-in-username').value.trim(), password: $('sign-in-password').value };
  if (/^[0-9a-f]{32}$/.test(account)) data.account_id = account;
  else data.account_name = account;
  try {
    const r = await api('PUT', '/v1/user_auth', data);
    $('sign-in-password').value = '';
    signedIn(r, true);
  } catch (err) {
    $('user-sign-in-error').textContent = err.status === 401 ? 'That account, username and password do not match.' : err.message;
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

route();
