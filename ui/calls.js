// The Calls page of an account's administrator: one card per call naming
// both parties, a Transfer button per party saying who is moved, the
// transfer's progress and Cancel. Kept live by konami's event stream.
import { $, LiveChannels, api, callsPath, failureText } from './api.js';

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
export function callsOf(channels) {
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

export function transferText(call) {
  if (call.transfer) return `Transferring ${movedBy(call, call.transfer)} to ${call.transfer.target}: ${STATE[call.transfer.state] ?? call.transfer.state}`;
  if (call.last) return `Last transfer to ${call.last.target}: ${OUTCOME[call.last.outcome] ?? call.last.outcome}`;
  return '';
}

/**
 * A call's card: who, its state and transfer, and while it may be transferred
 * a form with the number to dial and one button per `movers` entry ([label,
 * the channel that acts]); while a transfer runs, Cancel (sent on `canceller`).
 */
export function callCard(call, { heading, big = false, label, movers, canceller, act }) {
  const li = document.createElement('li');
  li.dataset.id = call.id;
  const who = document.createElement('div');
  who.className = big ? 'who big' : 'who';
  who.textContent = heading;
  const state = document.createElement('div');
  state.className = 'state';
  state.textContent = `${call.state}${transferText(call) ? ` · ${transferText(call)}` : ''}`;
  li.append(who, state);
  if (movers.length > 0 && call.state === 'answered' && !call.transfer && call.a && call.b) {
    const form = document.createElement('form');
    const caption = document.createElement('label');
    const input = document.createElement('input');
    input.id = `target-${call.id}`;
    caption.htmlFor = input.id;
    caption.textContent = label;
    input.type = 'tel';
    input.inputMode = 'tel';
    input.autocomplete = 'off';
    form.append(caption, input);
    for (const [text, by] of movers) {
      const button = document.createElement('button');
      button.type = 'submit';
      button.textContent = text;
      button.dataset.by = by;
      form.append(button);
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void act(e.submitter?.dataset.by ?? movers[0][1], { action: 'transfer', target: input.value.trim() });
    });
    li.append(form);
  }
  if (call.transfer && canceller) {
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'secondary';
    cancel.textContent = 'Cancel transfer';
    cancel.addEventListener('click', () => void act(canceller, { action: 'cancel' }));
    li.append(cancel);
  }
  return li;
}

/** The administrator's card: both parties, a button per party naming who is moved (the other party hands over). */
function callItem(call) {
  return callCard(call, {
    heading: `${call.names.a} → ${call.names.b}`,
    label: 'Transfer to',
    movers: call.a && call.b ? [[`Transfer ${call.names.a}`, call.b.id], [`Transfer ${call.names.b}`, call.a.id]] : [],
    // Any party still in the call may carry the request: the transfer is the call's.
    canceller: (call.a ?? call.b)?.id,
    act,
  });
}

/** Sends an action on a channel; a refusal is shown in the element `errorId`. */
export function actions(errorId) {
  return async (id, data) => {
    $(errorId).textContent = '';
    try {
      await api('POST', `${callsPath()}/channels/${encodeURIComponent(id)}`, data);
    } catch (err) {
      $(errorId).textContent = failureText(err);
    }
  };
}

/** Draws calls into a list, only when something changed, so typing in a field is not interrupted. */
export function callList(listId, emptyId, item) {
  let last = '';
  return (channels) => {
    const calls = callsOf(channels);
    const next = JSON.stringify(calls.map((c) => [c.id, c.a?.id, c.b?.id, c.state, c.transfer, c.last]));
    if (next === last) return;
    const focused = document.activeElement?.id;
    const typed = focused ? document.activeElement.value : undefined;
    last = next;
    $(emptyId).hidden = calls.length > 0;
    $(listId).replaceChildren(...calls.map(item));
    if (focused && $(focused)) {
      $(focused).focus();
      if (typed !== undefined) $(focused).value = typed;
    }
  };
}

const act = actions('calls-error');

export const accountCalls = new LiveChannels(callList('calls', 'calls-empty', callItem), (err) => void ($('calls-error').textContent = err.message));
