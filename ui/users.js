// The Users page of an account's administrator: the people who may transfer
// their own calls from the app. Each has a username, a name, the numbers that
// are theirs and a password the administrator gives them.
import { $, accountPath, api, failureText } from './api.js';

const numbersOf = (text) => text.split(',').map((n) => n.trim()).filter((n) => n !== '');

function userItem(user) {
  const li = document.createElement('li');
  li.dataset.id = user.id;
  const who = document.createElement('div');
  who.className = 'who';
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  who.textContent = `${user.username}${name ? ` (${name})` : ''}`;
  const numbers = document.createElement('div');
  numbers.className = 'state';
  numbers.textContent = `Numbers: ${user.numbers.join(', ') || 'none'}`;
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'secondary';
  remove.textContent = `Remove ${user.username}`;
  remove.addEventListener('click', async () => {
    try {
      await api('DELETE', accountPath(`/users/${user.id}`));
      await loadUsers();
    } catch (err) {
      $('users-error').textContent = failureText(err);
    }
  });
  li.append(who, numbers, remove);
  return li;
}

export async function loadUsers() {
  $('users-error').textContent = '';
  try {
    const { data } = await api('GET', accountPath('/users'));
    $('users-empty').hidden = data.length > 0;
    $('users').replaceChildren(...data.map(userItem));
  } catch (err) {
    $('users-error').textContent = err.message;
  }
}

$('user-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  for (const f of ['user-name', 'user-numbers', 'user-password']) $(`${f}-error`).textContent = '';
  $('users-error').textContent = '';
  const data = { username: $('user-name').value.trim(), numbers: numbersOf($('user-numbers').value), password: $('user-password').value };
  if ($('user-first-name').value.trim()) data.first_name = $('user-first-name').value.trim();
  try {
    await api('PUT', accountPath('/users'), data);
    $('user-form').reset();
    $('users-error').textContent = '';
    await loadUsers();
  } catch (err) {
    const at = { username: 'user-name', numbers: 'user-numbers', password: 'user-password' };
    let placed = false;
    for (const [field, rules] of Object.entries(err.fields ?? {})) {
      const input = at[field.split('.')[0]];
      if (input) {
        $(`${input}-error`).textContent = Object.values(rules)[0]?.message ?? 'is not valid';
        placed = true;
      }
    }
    if (!placed) $('users-error').textContent = failureText(err);
  }
});
