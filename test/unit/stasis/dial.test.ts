import { expect } from 'chai';
import { DialRoutes, deviceOf, dialString, isDialable, parseRoutes, templateProblem } from '../../../lib/stasis/dial.js';

describe('what konami may dial', function () {
  it('a number is digits with an optional leading +: no letter, no separator, no technology, no feature code', function () {
    for (const ok of ['2600', '+442071234567', '1'.repeat(32)]) expect(isDialable(ok), ok).to.equal(true);
    for (const bad of ['', 'bob', '*97', '#1', '26*00', '2600@trunk', 'PJSIP/2600', '26&00', '2600,Local', '1+2', ' 2600', '1'.repeat(33), 'sip:x@y', '2600/n']) {
      expect(isDialable(bad), bad).to.equal(false);
    }
  });

  it('a route turns a number into a dial string, and nothing else into anything', function () {
    expect(dialString('PJSIP/{target}@trunk', '2600')).to.equal('PJSIP/2600@trunk');
    expect(dialString('PJSIP/{target}@trunk', 'x@evil')).to.equal(undefined);
  });

  it('checks route templates: a technology, {target} once, no space or comma', function () {
    expect(templateProblem('PJSIP/{target}')).to.equal(undefined);
    expect(templateProblem('Local/{target}@internal/n')).to.equal(undefined);
    for (const bad of ['{target}', 'PJSIP/bob', 'PJSIP/{target}{target}', 'PJSIP/{target} x', 'PJSIP/{target},t', 'PJSIP/' + 'x'.repeat(300) + '{target}']) {
      expect(templateProblem(bad), bad).to.be.a('string');
    }
  });

  it('parses DIAL_ROUTES, naming every bad route', function () {
    expect([...parseRoutes('pstn=PJSIP/{target}@trunk; lab=Local/{target}@lab/n;')]).to.deep.equal([
      ['pstn', 'PJSIP/{target}@trunk'], ['lab', 'Local/{target}@lab/n'],
    ]);
    expect(() => parseRoutes('Bad Name=PJSIP/{target};x=nope;default=PJSIP/{target}')).to.throw(/route "Bad Name".*route x: the template.*route default: defined twice/);
  });

  it('an account uses only the routes the operator allowed it, and only while they exist', function () {
    const table = new Map([['default', 'PJSIP/{target}'], ['pstn', 'PJSIP/{target}@trunk']]);
    const allowed: Record<string, string[]> = { rich: ['default', 'pstn', 'gone'] };
    const routes = new DialRoutes(() => table, (a) => allowed[a]);
    expect(routes.namesFor('plain')).to.deep.equal(['default']);
    expect(routes.namesFor('rich')).to.deep.equal(['default', 'pstn']);
    expect(routes.templateFor('plain', 'pstn')).to.equal(undefined);
    expect(routes.templateFor('rich', 'pstn')).to.equal('PJSIP/{target}@trunk');
    table.delete('pstn');
    expect(routes.templateFor('rich', 'pstn')).to.equal(undefined);
  });

  it("a caller's device is the endpoint its channel came from, and only a real device", function () {
    expect(deviceOf('PJSIP/alice-0000002a')).to.equal('PJSIP/alice');
    expect(deviceOf('PJSIP/1001-000000ff')).to.equal('PJSIP/1001');
    expect(deviceOf('IAX2/alice-1234')).to.equal('IAX2/alice');
    for (const none of ['Local/1001@phones-00000001;2', 'PJSIP/alice', 'PJSIP/a,b-0000002a', 'Snoop/x-0000002a']) expect(deviceOf(none), none).to.equal(undefined);
  });
});
