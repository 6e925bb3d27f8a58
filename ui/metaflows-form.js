// What the Features form shows of an account's metaflows, and the metaflows a
// save sends: the loaded ones with only what the form shows put in. No DOM
// here, so the merge is tested on its own (test/unit/ui/metaflows-form.test.ts).

const TRANSFER_SUFFIX = '(\\d+)';
/** A plain transfer pattern: keys followed by (\d+). Anything else is shown as the pattern it is. */
const PLAIN = /^((?:[0-9A-D]|\\\*)+)\(\\d\+\)$/;

function escapeRegex(code) {
  return code.replace(/[\\^$.*+?()[\]{}|]/g, (c) => `\\${c}`);
}

/** The first code of `module` in a table: [key, action], or undefined. */
function codeOf(table, module) {
  return Object.entries(table ?? {}).find(([, a]) => a.module === module);
}

/** A copy of `table` with `oldKey` replaced by `key: action` in its place (added last if new, removed if action is null). */
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

/** The form's fields for these metaflows (the first transfer pattern, the first resume number). */
export function formOf(m) {
  const transfer = codeOf(m.patterns, 'transfer');
  const resume = codeOf(m.numbers, 'resume');
  const plain = transfer && PLAIN.exec(transfer[0]);
  const data = transfer?.[1].data ?? {};
  return {
    transferOn: Boolean(transfer),
    transferCode: transfer ? (plain ? plain[1].replace(/\\(.)/g, '$1') : transfer[0]) : '21',
    resumeOn: Boolean(resume),
    resumeCode: resume ? resume[0] : '22',
    bindingDigit: m.binding_digit ?? '*',
    digitTimeout: m.digit_timeout ?? 2000,
    listenOn: m.listen_on ?? 'both',
    ringTimeout: data.ring_timeout ?? 20,
    moh: data.moh ?? data.moh_class ?? 'default',
  };
}

/** The keys the form stands for: the loaded key while its code is as shown, else the code typed. */
export function keysOf(form, loaded) {
  const transfer = codeOf(loaded.patterns, 'transfer');
  const asShown = transfer && form.transferCode === formOf(loaded).transferCode;
  return {
    transferKey: asShown ? transfer[0] : `${escapeRegex(form.transferCode)}${TRANSFER_SUFFIX}`,
    resumeKey: form.resumeCode,
  };
}

/**
 * The loaded metaflows with the form put in: every other code, setting and
 * order stays as it was. `{ error: { field, message } }` when a code typed is
 * already another code.
 */
export function mergeForm(loaded, form) {
  const m = JSON.parse(JSON.stringify(loaded));
  m.binding_digit = form.bindingDigit;
  m.digit_timeout = form.digitTimeout;
  m.listen_on = form.listenOn;
  const { transferKey, resumeKey } = keysOf(form, loaded);
  const transfer = codeOf(m.patterns, 'transfer');
  const resume = codeOf(m.numbers, 'resume');
  const taken = (table, key, own) => key !== own && Object.hasOwn(table ?? {}, key);
  if (form.transferOn && taken(m.patterns, transferKey, transfer?.[0])) return { error: { field: 'transfer-code', message: 'is already another code' } };
  if (form.resumeOn && taken(m.numbers, resumeKey, resume?.[0])) return { error: { field: 'resume-code', message: 'is already another code' } };
  if (form.transferOn) {
    const data = { ...(transfer?.[1].data ?? {}), ring_timeout: form.ringTimeout, moh: form.moh };
    delete data.moh_class;
    m.patterns = replaceCode(m.patterns, transfer?.[0], transferKey, { ...transfer?.[1], module: 'transfer', data });
  } else if (transfer) m.patterns = replaceCode(m.patterns, transfer[0], transfer[0], null);
  if (form.resumeOn) m.numbers = replaceCode(m.numbers, resume?.[0], resumeKey, resume?.[1] ?? { module: 'resume' });
  else if (resume) m.numbers = replaceCode(m.numbers, resume[0], resume[0], null);
  return { metaflows: m };
}
