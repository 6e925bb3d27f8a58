// A signed-in user's own calls, for a phone's screen: who they are talking
// to, a Transfer button with the number to dial, the transfer's progress and
// Cancel. The user is the transferor: the other party is the one moved.
import { $, LiveChannels, session } from './api.js';
import { actions, callCard, callList } from './calls.js';

/** The user's own party in a call, and the other one. */
function sides(call) {
  const mine = call.b?.owner_id === session.user && call.a?.owner_id !== session.user ? 'b' : 'a';
  const theirs = mine === 'a' ? 'b' : 'a';
  return { me: call[mine], other: call.names[theirs] };
}

function myCall(call) {
  const { me, other } = sides(call);
  return callCard(call, {
    heading: other,
    big: true,
    label: 'Number to transfer to',
    movers: me ? [[`Transfer ${other}`, me.id]] : [],
    canceller: (me ?? call.a ?? call.b)?.id,
    act,
  });
}

const act = actions('mine-error');

export const myCalls = new LiveChannels(callList('mine', 'mine-empty', myCall), (err) => void ($('mine-error').textContent = err.message));
