// A signed-in user's own calls, for a phone's screen: who they are talking
// to, a Transfer button with the number to dial, the transfer's progress and
// Cancel. The user is the transferor: the other party is the one moved.
import { $, LiveChannels, session } from './api.js';
import { actions, callList, transferText } from './calls.js';

/** The user's own party in a call, and the other one. */
function sides(call) {
  const mine = call.b?.owner_id === session.user && call.a?.owner_id !== session.user ? 'b' : 'a';
  const theirs = mine === 'a' ? 'b' : 'a';
  return { me: call[mine], other: call.names[theirs] };
}

function myCall(call) {
  const { me, other } = sides(call);
  const li = document.createElement('li');
  li.dataset.id = call.id;
  const who = document.createElement('div');
  who.className = 'who big';
  who.textContent = other;
  const state = document.createElement('div');
  state.className = 'state';
  state.textContent = `${call.state}${transferText(call) ? ` · ${transferText(call)}` : ''}`;
  li.append(who, state);
  if (me && call.state === 'answered' && !call.transfer && call.a && call.b) {
    const form = document.createElement('form');
    const label = document.createElement('label');
    label.htmlFor = `mine-target-${call.id}`;
    label.textContent = 'Number to transfer to';
    const input = document.createElement('input');
    input.id = `mine-target-${call.id}`;
    input.type = 'tel';
    input.inputMode = 'tel';
    input.autocomplete = 'off';
    const button = document.createElement('button');
    button.type = 'submit';
    button.textContent = `Transfer ${other}`;
    form.append(label, input, button);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void act(me.id, { action: 'transfer', target: input.value.trim() });
    });
    li.append(form);
  }
  if (call.transfer) {
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary';
    cancel.textContent = 'Cancel transfer';
    cancel.addEventListener('click', () => void act((me ?? call.a ?? call.b).id, { action: 'cancel' }));
    li.append(cancel);
  }
  return li;
}

const act = actions('mine-error');

export const myCalls = new LiveChannels(callList('mine', 'mine-empty', myCall), (err) => void ($('mine-error').textContent = err.message));
