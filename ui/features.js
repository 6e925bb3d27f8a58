// The Features page: an account's administrator switches Transfer and Resume
// on and sets their codes and timings. Saving changes only what the page
// shows; every other code and setting is kept as it was. All codes can also
// be edited as JSON, in Kazoo's or the specification's shape.
import { $, accountPath, api } from './api.js';

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
  const { transferKey, resumeKey } = formKeys();
  if (within(`patterns.${transferKey}`)) {
    if (field.endsWith('.data.ring_timeout')) return 'ring-timeout';
    if (field.endsWith('.data.moh')) return 'moh-class';
    return 'transfer-code';
  }
  if (within(`numbers.${resumeKey}`)) return 'resume-code';
  return undefined;
}

function escapeRegex(code) {
  return code.replace(/[\\^$.*+?()[\]{}|]/g, (c) => `\\${c}`);
}

const TRANSFER_SUFFIX = '(\\d+)';

/** The metaflows as last loaded: saving changes only what this page shows, and keeps the rest. */
let loaded = {};
/** The codes the form shows, as loaded: a code left as shown keeps its key exactly, whatever its shape. */
let shown = { transfer: undefined, resume: undefined };

/** A plain transfer pattern: digits followed by (\d+). Anything else is shown as the pattern it is. */
const PLAIN = /^((?:[0-9A-D]|\\\*)+)\(\\d\+\)$/;

/** The keys the form stands for: the loaded key while its field is unchanged, else the code typed. */
function formKeys() {
  const transferCode = $('transfer-code').value;
  const resumeCode = $('resume-code').value;
  return {
    transferKey: shown.transfer && transferCode === shown.transfer.code ? shown.transfer.key : `${escapeRegex(transferCode)}${TRANSFER_SUFFIX}`,
    resumeKey: resumeCode,
  };
}

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
  const plain = transfer && PLAIN.exec(transfer[0]);
  if (transfer) $('transfer-code').value = plain ? plain[1].replace(/\\(.)/g, '$1') : transfer[0];
  if (resume) $('resume-code').value = resume[0];
  shown = {
    transfer: transfer && { key: transfer[0], code: $('transfer-code').value },
    resume: resume && { key: resume[0] },
  };
  $('binding-digit').value = m.binding_digit ?? '*';
  $('digit-timeout').value = String(m.digit_timeout ?? 2000);
  $('listen-on').value = m.listen_on ?? 'both';
  $('ring-timeout').value = String(transfer?.[1].data?.ring_timeout ?? 20);
  $('moh-class').value = transfer?.[1].data?.moh ?? transfer?.[1].data?.moh_class ?? 'default';
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

/**
 * The loaded metaflows with what the form shows put in: other codes and other
 * settings stay as they were. Undefined (with the field's error shown) when
 * a code typed is already another code.
 */
function metaflowsFromForm() {
  const m = JSON.parse(JSON.stringify(loaded));
  m.binding_digit = $('binding-digit').value;
  m.digit_timeout = asNumber($('digit-timeout').value);
  m.listen_on = $('listen-on').value;
  const { transferKey, resumeKey } = formKeys();
  const transfer = codeOf(m.patterns, 'transfer');
  const resume = codeOf(m.numbers, 'resume');
  const taken = (table, key, own) => key !== own && Object.hasOwn(table ?? {}, key);
  if ($('transfer-on').checked && taken(m.patterns, transferKey, transfer?.[0])) {
    $('transfer-code-error').textContent = 'is already another code';
    return undefined;
  }
  if ($('resume-on').checked && taken(m.numbers, resumeKey, resume?.[0])) {
    $('resume-code-error').textContent = 'is already another code';
    return undefined;
  }
  if ($('transfer-on').checked) {
    const data = { ...(transfer?.[1].data ?? {}), ring_timeout: asNumber($('ring-timeout').value), moh: $('moh-class').value };
    delete data.moh_class;
    m.patterns = replaceCode(m.patterns, transfer?.[0], transferKey, { ...transfer?.[1], module: 'transfer', data });
  } else if (transfer) m.patterns = replaceCode(m.patterns, transfer[0], transfer[0], null);
  if ($('resume-on').checked) m.numbers = replaceCode(m.numbers, resume?.[0], resumeKey, resume?.[1] ?? { module: 'resume' });
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
  clearErrors();
  const metaflows = metaflowsFromForm();
  if (metaflows) void saveMetaflows(metaflows, 'form');
  else $('features-error').textContent = 'Not saved: see the fields above.';
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
