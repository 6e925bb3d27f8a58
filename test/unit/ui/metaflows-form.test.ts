// The web app's Features form (ui/metaflows-form.js): a save changes only what
// the form shows, over whatever the account had.
import { expect } from 'chai';
import { formOf, mergeForm } from '../../../ui/metaflows-form.js';

const rich = {
  binding_digit: '*', digit_timeout: 2000, listen_on: 'b',
  numbers: { 22: { module: 'resume', data: {} }, 99: { module: 'probe', data: { x: 1 } } },
  patterns: {
    '7(\\d+)': { module: 'transfer', data: { transfer_type: 'blind', recall_attempts: 0, moh_class: 'jazz' } },
    '3(\\d)': { module: 'probe', data: {} },
    '21(\\d+)': { module: 'transfer', data: { ring_timeout: 30, takeback_dtmf: '#9' } },
  },
};

describe("the web app's Features form", function () {
  it('shows the first transfer pattern and resume number, and saving it unchanged changes nothing but the old moh spelling', function () {
    const form = formOf(rich);
    expect(form).to.include({ transferOn: true, transferCode: '7', resumeOn: true, resumeCode: '22', listenOn: 'b', moh: 'jazz' });
    const { metaflows } = mergeForm(rich, form);
    const expected = structuredClone(rich) as unknown as { patterns: Record<string, { data: Record<string, unknown> }> };
    expected.patterns['7(\\d+)']!.data = { transfer_type: 'blind', recall_attempts: 0, ring_timeout: 20, moh: 'jazz' };
    expect(metaflows).to.deep.equal(expected);
  });

  it('a new code replaces the old one in its place; every other code and setting is kept', function () {
    const { metaflows } = mergeForm(rich, { ...formOf(rich), transferCode: '8', ringTimeout: 25, resumeCode: '23' });
    expect(Object.keys(metaflows!.patterns!)).to.deep.equal(['8(\\d+)', '3(\\d)', '21(\\d+)']);
    expect(metaflows!.patterns!['8(\\d+)']).to.deep.equal({ module: 'transfer', data: { transfer_type: 'blind', recall_attempts: 0, ring_timeout: 25, moh: 'jazz' } });
    expect(metaflows!.patterns!['21(\\d+)']).to.deep.equal(rich.patterns['21(\\d+)']);
    expect(metaflows!.numbers).to.deep.equal({ 23: { module: 'resume', data: {} }, 99: { module: 'probe', data: { x: 1 } } });
  });

  it('switching Transfer off removes only the code it shows', function () {
    const { metaflows } = mergeForm(rich, { ...formOf(rich), transferOn: false });
    expect(Object.keys(metaflows!.patterns!)).to.deep.equal(['3(\\d)', '21(\\d+)']);
  });

  it('a pattern that is no plain number keeps its key while its field is left as shown', function () {
    const odd = { ...rich, patterns: { '2[12](\\d+)': { module: 'transfer', data: {} } } };
    const form = formOf(odd);
    expect(form.transferCode).to.equal('2[12](\\d+)');
    expect(Object.keys(mergeForm(odd, { ...form, ringTimeout: 45 }).metaflows!.patterns!)).to.deep.equal(['2[12](\\d+)']);
  });

  it('refuses a code typed that is already another code, naming the field', function () {
    expect(mergeForm(rich, { ...formOf(rich), transferCode: '21' }).error).to.deep.equal({ field: 'transfer-code', message: 'is already another code' });
    expect(mergeForm(rich, { ...formOf(rich), resumeCode: '99' }).error).to.deep.equal({ field: 'resume-code', message: 'is already another code' });
  });

  it('on an account with no metaflows, builds them from the form alone', function () {
    const form = { ...formOf({}), transferOn: true, resumeOn: true };
    expect(mergeForm({}, form).metaflows).to.deep.equal({
      binding_digit: '*', digit_timeout: 2000, listen_on: 'both',
      patterns: { '21(\\d+)': { module: 'transfer', data: { ring_timeout: 20, moh: 'default' } } },
      numbers: { 22: { module: 'resume' } },
    });
  });
});
