import { expect } from 'chai';
import { validateMetaflows } from '../../../lib/metaflow/config.js';
import { ValidationError, type FieldError } from '../../../lib/validation.js';
import { testRegistry } from './helpers.js';

function errorsOf(raw: unknown): FieldError[] {
  try {
    validateMetaflows(raw, testRegistry());
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    return [...(err as ValidationError).errors];
  }
  expect.fail('the metaflows were accepted');
}

describe('metaflow validation', function () {
  it('applies the defaults to an empty config: no codes until an admin adds them', function () {
    expect(validateMetaflows({}, testRegistry())).to.deep.equal({
      binding_digit: '*', digit_timeout: 2000, listen_on: 'both', numbers: {}, patterns: {},
    });
  });

  it('accepts Kazoo\'s shape, keeping pattern order and filling data', function () {
    const c = validateMetaflows({
      binding_digit: '*', digit_timeout: 1500, listen_on: 'a',
      numbers: { 22: { module: 'resume' } },
      patterns: { '21(\\d+)': { module: 'transfer' }, '9(\\d)': { module: 'probe', data: { x: 1 } } },
    }, testRegistry());
    expect(Object.keys(c.patterns)).to.deep.equal(['21(\\d+)', '9(\\d)']);
    expect(c.numbers['22']).to.deep.equal({ module: 'resume', data: {} });
    expect(c.patterns['9(\\d)']!.data).to.deep.equal({ x: 1 });
  });

  it('names an unknown module', function () {
    expect(errorsOf({ numbers: { 22: { module: 'teleport' } } })).to.deep.equal([
      { field: 'numbers.22.module', rule: 'enum', message: 'unknown module "teleport"; known: transfer, resume, probe' },
    ]);
  });

  it('names an invalid regex and says where it breaks', function () {
    const [e] = errorsOf({ patterns: { '21(\\d+': { module: 'transfer' } } });
    expect(e).to.include({ field: 'patterns.21(\\d+', rule: 'pattern' });
    expect(e!.message).to.match(/^is not a valid pattern: .* at position \d+$/);
  });

  it('refuses patterns that need backtracking features (backreferences, lookaround)', function () {
    expect(errorsOf({ patterns: { '(\\d)\\1': { module: 'probe' } } })[0]!.field).to.equal('patterns.(\\d)\\1');
    expect(errorsOf({ patterns: { '(?=2)2': { module: 'probe' } } })[0]!.rule).to.equal('pattern');
  });

  it('refuses a non-DTMF or terminating binding digit', function () {
    for (const d of ['x', '#', '**', '', 5]) {
      const [e] = errorsOf({ binding_digit: d });
      expect(e!.field, String(d)).to.equal('binding_digit');
    }
  });

  it('refuses out-of-range or non-integer timeouts, naming the bound', function () {
    expect(errorsOf({ digit_timeout: 100 })[0]).to.deep.include({ field: 'digit_timeout', rule: 'minimum' });
    expect(errorsOf({ digit_timeout: 60000 })[0]).to.deep.include({ field: 'digit_timeout', rule: 'maximum' });
    expect(errorsOf({ digit_timeout: 1500.5 })[0]).to.deep.include({ field: 'digit_timeout', rule: 'type' });
    expect(errorsOf({ digit_timeout: '2000' })[0]).to.deep.include({ field: 'digit_timeout', rule: 'type' });
  });

  it('refuses a bad listen_on, a non-DTMF number, an unknown field, a module\'s bad data: all at once', function () {
    const fields = errorsOf({
      listen_on: 'self', numbers: { '2x': { module: 'resume' } }, colour: 'blue',
      patterns: { '21': { module: 'transfer', data: { target: 'bob' } } },
    }).map((e) => `${e.field}/${e.rule}`);
    expect(fields).to.have.members(['listen_on/enum', 'numbers.2x/unknown', 'colour/unknown', 'patterns.21.data.target/pattern']);
    const data = errorsOf({ patterns: { '21': { module: 'transfer', data: { target: 'bob' } } } });
    expect(data).to.deep.equal([{ field: 'patterns.21.data.target', rule: 'pattern', message: data[0]!.message }]);
  });

  it('refuses a code entry without a module, or something that is not an object', function () {
    expect(errorsOf({ numbers: { 22: {} } })[0]).to.deep.include({ field: 'numbers.22.module', rule: 'required' });
    expect(errorsOf([])[0]).to.deep.include({ field: '(body)', rule: 'type' });
  });
});
