import { expect } from 'chai';
import { MAX_CODE_DIGITS, PATTERN_BUDGET, validateMetaflows } from '../../../lib/metaflow/config.js';
import { DtmfRegex, MAX_PROGRAM } from '../../../lib/metaflow/dtmf-regex.js';
import { ValidationError, type FieldError } from '../../../lib/validation.js';
import { builtInModules } from '../../../lib/stasis/modules/index.js';
import { testRegistry } from './helpers.js';

/** The modules konami ships: their data schemas are what an admin's metaflows meet. */
const modules = builtInModules();

function errorsOf(raw: unknown, registry = testRegistry()): FieldError[] {
  try {
    validateMetaflows(raw, registry);
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
      listen_on: 'caller', numbers: { '2x': { module: 'resume' } }, colour: 'blue',
      patterns: { '21': { module: 'transfer', data: { target: 'bob' } } },
    }).map((e) => `${e.field}/${e.rule}`);
    expect(fields).to.have.members(['listen_on/enum', 'numbers.2x/unknown', 'colour/unknown', 'patterns.21.data.target/pattern']);
    const data = errorsOf({ patterns: { '21': { module: 'transfer', data: { target: 'bob' } } } });
    expect(data).to.deep.equal([{ field: 'patterns.21.data.target', rule: 'pattern', message: data[0]!.message }]);
  });

  it("takes the specification's example as written, and stores it in konami's one spelling", function () {
    const given = {
      metaflows: {
        numbers: { 22: { module: 'resume', data: {} } },
        patterns: { '21(\\d+)': { module: 'transfer', data: {} } },
        binding_key: '*',
      },
    };
    const m = validateMetaflows(given, modules);
    expect(m).to.deep.equal({
      binding_digit: '*', digit_timeout: 2000, listen_on: 'both',
      numbers: { 22: { module: 'resume', data: {} } },
      patterns: { '21(\\d+)': { module: 'transfer', data: {} } },
    });
  });

  it("takes Kazoo's spellings (digit_timeout_ms, listen_on self/peer, empty children, moh_class, Transfer-Type) and stores konami's", function () {
    const m = validateMetaflows({
      binding_digit: '*', digit_timeout_ms: 1500, listen_on: 'peer',
      numbers: { 22: { module: 'resume', data: {}, children: {} } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { moh_class: 'jazz', 'Transfer-Type': 'blind', takeback_dtmf: '*9' }, children: {} } },
    }, modules, { mohClasses: ['default', 'jazz'] });
    expect(m).to.deep.include({ digit_timeout: 1500, listen_on: 'b' });
    expect(m.numbers['22']).to.deep.equal({ module: 'resume', data: {} });
    expect(m.patterns['21(\\d+)']).to.deep.equal({ module: 'transfer', data: { moh: 'jazz', transfer_type: 'blind', takeback_dtmf: '*9' } });
    expect(validateMetaflows({ listen_on: 'self' }, modules).listen_on).to.equal('a');
    expect(validateMetaflows({ listen_on: 'ab' }, modules).listen_on).to.equal('both');
  });

  it('refuses one field under two names, children konami would not run, and a bad ringback or takeback, naming each', function () {
    const fields = errorsOf({
      binding_digit: '*', binding_key: '#', digit_timeout: 900, digit_timeout_ms: 900,
      numbers: { 22: { module: 'resume', children: { _: { module: 'resume' } } } },
      patterns: { '21(\\d+)': { module: 'transfer', data: { ringback: 'file:/etc/passwd', takeback_dtmf: '*1x', transfer_type: 'warm' } } },
    }, modules).map((e) => `${e.field}/${e.rule}`);
    expect(fields).to.have.members([
      'binding_key/unique', 'digit_timeout_ms/unique', 'numbers.22.children/maxItems',
      'patterns.21(\\d+).data.ringback/pattern', 'patterns.21(\\d+).data.takeback_dtmf/pattern', 'patterns.21(\\d+).data.transfer_type/enum',
    ]);
  });

  it("refuses a music-on-hold class the operator does not offer (Asterisk's classes are every account's)", function () {
    const raw = { patterns: { '21(\\d+)': { module: 'transfer', data: { moh: 'other-tenant-music' } } } };
    const refused = errorsOf(raw, modules).map((e) => `${e.field}/${e.rule}: ${e.message}`);
    expect(refused).to.deep.equal(['patterns.21(\\d+).data.moh/enum: must be a music-on-hold class the operator offers: default']);
    expect(() => validateMetaflows(raw, modules, { mohClasses: ['default', 'other-tenant-music'] })).to.not.throw();
  });

  it('takes nothing from names every object has (toString, __proto__) and nothing from a null wrapper', function () {
    expect(errorsOf({ listen_on: 'toString' }, modules).map((e) => `${e.field}/${e.rule}`)).to.deep.equal(['listen_on/enum']);
    expect(errorsOf({ metaflows: null }, modules).map((e) => `${e.field}/${e.rule}`)).to.deep.equal(['(body)/type']);
    expect(errorsOf(JSON.parse('{"__proto__": {"binding_digit": "#"}, "binding_key": "*", "binding_digit": "*"}'), modules)
      .map((e) => `${e.field}/${e.rule}`)).to.deep.equal(['binding_key/unique']);
    const saved = validateMetaflows(JSON.parse('{"__proto__": {"listen_on": "a"}, "binding_key": "*"}'), modules);
    expect(saved.listen_on, 'nothing comes from a __proto__ key').to.equal('both');
    expect(({} as Record<string, unknown>)['listen_on'], 'nothing reached every object').to.equal(undefined);
  });

  it('refuses a code entry without a module, or something that is not an object', function () {
    expect(errorsOf({ numbers: { 22: {} } })[0]).to.deep.include({ field: 'numbers.22.module', rule: 'required' });
    expect(errorsOf([])[0]).to.deep.include({ field: '(body)', rule: 'type' });
  });

  describe('how a transfer is dialled is the operator\'s choice', function () {
    const transfer = (data: object) => ({ patterns: { '21(\\d+)': { module: 'transfer', data } } });
    const real = () => builtInModules();

    it('refuses a dial string from the account, naming the field', function () {
      let errors: FieldError[] = [];
      try {
        validateMetaflows(transfer({ dial_template: 'PJSIP/{target}@premium-trunk' }), real());
      } catch (err) {
        errors = [...(err as ValidationError).errors];
      }
      expect(errors.map((e) => e.field)).to.deep.equal(['patterns.21(\\d+).data.dial_template']);
      expect(errors[0]!.message).to.match(/operator/);
    });

    it('accepts only a dial route the account may use, listing them', function () {
      expect(() => validateMetaflows(transfer({ dial_route: 'pstn' }), real())).to.throw(ValidationError, /default$/);
      const ok = validateMetaflows(transfer({ dial_route: 'pstn' }), real(), { dialRoutes: ['default', 'pstn'] });
      expect(ok.patterns['21(\\d+)']!.data).to.deep.equal({ dial_route: 'pstn' });
    });

    it('a fixed target is a number, never a dial string', function () {
      expect(() => validateMetaflows({ numbers: { 9: { module: 'transfer', data: { target: 'PJSIP/x' } } } }, real())).to.throw(ValidationError, /target/);
    });
  });

  describe('the cost budget: no account can make a digit expensive', function () {
    it('refuses the metaflows that stalled every call: 64 patterns of 116 empty groups and nested repetitions', function () {
      const patterns: Record<string, unknown> = {};
      for (let i = 0; i < 64; i++) patterns[`${'()'.repeat(116)}((\\d?){30}){30}ABC${i}`] = { module: 'probe' };
      const errors = errorsOf({ patterns });
      expect(errors).to.have.length(64);
      for (const e of errors) expect(e.field).to.match(/^patterns\.\(\)/);
    });

    it('refuses more than 9 capture groups in a pattern, naming it', function () {
      const [e] = errorsOf({ patterns: { [`${'(1)'.repeat(10)}`]: { module: 'probe' } } });
      expect(e).to.deep.include({ field: `patterns.${'(1)'.repeat(10)}`, rule: 'pattern' });
      expect(e!.message).to.match(/more than 9 capture groups/);
    });

    it(`refuses a pattern that compiles to more than ${MAX_PROGRAM} steps, naming it and the rule`, function () {
      const [e] = errorsOf({ patterns: { '((\\d?){30}){30}': { module: 'probe' } } });
      expect(e).to.deep.include({ field: 'patterns.((\\d?){30}){30}', rule: 'cost' });
      expect(e!.message).to.match(/more than 512 steps per digit/);
    });

    it(`refuses patterns that fit one by one but together cost more than ${PATTERN_BUDGET} steps a digit`, function () {
      const big = (i: number) => `(?:(?:\\d?){31}){7}${i}`;
      expect(new DtmfRegex(big(0)).size).to.be.within(PATTERN_BUDGET / 20, MAX_PROGRAM);
      const patterns: Record<string, unknown> = {};
      for (let i = 0; i < 20; i++) patterns[big(i)] = { module: 'probe' };
      const errors = errorsOf({ patterns });
      expect(errors).to.have.length(1);
      expect(errors[0]).to.deep.include({ field: 'patterns', rule: 'cost' });
      // Half of them is within the budget.
      const half = Object.fromEntries(Object.entries(patterns).slice(0, 10));
      expect(Object.keys(validateMetaflows({ patterns: half }, testRegistry()).patterns)).to.have.length(10);
    });

    it(`refuses a pattern that needs more than ${MAX_CODE_DIGITS} digits: it could never match`, function () {
      const [e] = errorsOf({ patterns: { '\\d{20}\\d{20}': { module: 'probe' } } });
      expect(e).to.deep.include({ field: 'patterns.\\d{20}\\d{20}', rule: 'cost' });
      expect(e!.message).to.match(/needs at least 40 digits/);
    });

    it('refuses more than 100 codes before compiling or checking any of them', function () {
      const patterns: Record<string, unknown> = {};
      for (let i = 0; i < 1200; i++) patterns[`(?:(?:\\d?){31}){16}1(?:${i})?`] = { module: 'nope' };
      const numbers = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [String(i), { module: 'nope' }]));
      expect(errorsOf({ patterns, numbers })).to.deep.equal([
        { field: 'numbers', rule: 'maxItems', message: 'must have at most 100 codes' },
        { field: 'patterns', rule: 'maxItems', message: 'must have at most 100 codes' },
      ]);
    });

    it('stops compiling once the budget is spent: one error for the account, none per pattern past it', function () {
      const patterns: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) patterns[`(?:(?:\\d?){31}){7}${String(i).padStart(2, '0')}`] = { module: 'probe' };
      patterns['(bad'] = { module: 'probe' };
      const errors = errorsOf({ patterns });
      expect(errors.map((e) => `${e.field}/${e.rule}`)).to.deep.equal(['patterns/cost']);
    });

    it('refuses a class that matches no key', function () {
      expect(errorsOf({ patterns: { '[^0-9*#A-D]': { module: 'probe' } } })[0]).to.deep.include({ rule: 'pattern' });
    });
  });
});
