// The Features page: an account's administrator switches Transfer and Resume
// on and sets their codes and timings. Saving changes only what the page
// shows; every other code and setting is kept as it was. All codes can also
// be edited as JSON, in Kazoo's or the specification's shape.
import { $, accountPath, api } from './api.js';
import { formOf, keysOf, mergeForm } from './metaflows-form.js';

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
  const { transferKey, resumeKey } = keysOf(readForm(), loaded);
  if (within(`patterns.${transferKey}`)) {
    if (field.endsWith('.data.ring_timeout')) return 'ring-timeout';
    if (field.endsWith('.data.moh')) return 'moh-class';
    return 'transfer-code';
  }
  if (within(`numbers.${resumeKey}`)) return 'resume-code';
  return undefined;
}

/** The metaflows as last loaded: saving changes only what this page shows, and keeps the rest. */
let loaded = {};

/** The form as it is now. */
function readForm() {
  return {
    transferOn: $('transfer-on').checked,
    transferCode: $('transfer-code').value,
    resumeOn: $('resume-on').checked,
    resumeCode: $('resume-code').value,
    bindingDigit: $('binding-digit').value,
    digitTimeout: asNumber($('digit-timeout').value),
    listenOn: $('listen-on').value,
    ringTimeout: asNumber($('ring-timeout').value),
    moh: $('moh-class').value,
  };
}

function showFeatures(m) {
  const f = formOf(m);
  $('transfer-on').checked = f.transferOn;
  $('resume-on').checked = f.resumeOn;
  $('transfer-code').value = f.transferCode;
  $('resume-code').value = f.resumeCode;
  $('binding-digit').value = f.bindingDigit;
  $('digit-timeout').value = String(f.digitTimeout);
  $('listen-on').value = f.listenOn;
  $('ring-timeout').value = String(f.ringTimeout);
  $('moh-class').value = f.moh;
  $('metaflows-json').value = JSON.stringify(m, null, 2);
  updateBinding();
}

export async function loadFeatures() {
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
  clearErrors();
  const merged = mergeForm(loaded, readForm());
  if (merged.metaflows) {
    void saveMetaflows(merged.metaflows, 'form');
    return;
  }
  $(`${merged.error.field}-error`).textContent = merged.error.message;
  $('features-error').textContent = 'Not saved: see the fields above.';
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
