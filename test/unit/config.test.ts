import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../lib/config.js';

const minimal = { ARI_USERNAME: 'konami', ARI_PASSWORD: 's3cret' };

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  expect.fail('loadConfig accepted a bad configuration');
}

describe('configuration from the environment', function () {
  it('applies the documented defaults', function () {
    const c = loadConfig(minimal);
    expect(c.ari).to.deep.equal({ servers: [{ name: '127.0.0.1:8088', url: 'http://127.0.0.1:8088' }], username: 'konami', password: 's3cret', app: 'konami' });
    expect(c.http).to.deep.equal({ host: '127.0.0.1', port: 8000 });
    expect(c.dialRoutes).to.deep.equal({ default: 'PJSIP/{target}' });
    expect(c.ringTimeout).to.equal(30);
    expect(c.logLevel).to.equal('info');
    expect(c.shutdown).to.deep.equal({ grace: 10, calls: 'handover' });
    expect(Object.isFrozen(c.ari)).to.equal(true);
  });

  it('reads every setting and trims a trailing slash from ARI_URL', function () {
    const c = loadConfig({
      ...minimal, ARI_URL: 'https://pbx.example:8089/', ARI_APP: 'konami-2', HTTP_HOST: '0.0.0.0', HTTP_PORT: '9000',
      DATA_DIR: '/var/lib/konami', DIAL_TEMPLATE: 'Local/{exten}@phones/n', RING_TIMEOUT: '45', LOG_LEVEL: 'debug',
    });
    expect(c.ari.servers).to.deep.equal([{ name: 'pbx.example:8089', url: 'https://pbx.example:8089' }]);
    expect(c.ari.app).to.equal('konami-2');
    expect(c.http).to.deep.equal({ host: '0.0.0.0', port: 9000 });
    expect(c.dataDir).to.equal('/var/lib/konami');
    expect(c.dialRoutes).to.deep.equal({ default: 'Local/{target}@phones/n' });
    expect(c.ringTimeout).to.equal(45);
    expect(c.logLevel).to.equal('debug');
  });

  it('names every bad setting at once', function () {
    const problems = problemsOf({
      ARI_URL: 'ftp://x', HTTP_PORT: '70000', RING_TIMEOUT: '0', LOG_LEVEL: 'loud', ARI_APP: 'a b', DIAL_TEMPLATE: 'PJSIP/bob',
      SHUTDOWN_GRACE: '-1', SHUTDOWN_CALLS: 'drop',
    });
    const named = problems.map((p) => p.split(':')[0]);
    expect(named).to.have.members([
      'ARI_URL', 'ARI_USERNAME', 'ARI_PASSWORD', 'ARI_APP', 'HTTP_PORT', 'DIAL_TEMPLATE', 'RING_TIMEOUT', 'LOG_LEVEL',
      'SHUTDOWN_GRACE', 'SHUTDOWN_CALLS',
    ]);
  });

  it('several Asterisk servers in ARI_URL need DATABASE_URL; each is checked, and none may be named twice', function () {
    const database = { DATABASE_URL: 'postgres://konami@db/konami' };
    expect(loadConfig({ ...minimal, ...database, ARI_URL: 'http://pbx1:8088, east=http://10.0.0.2:8088/' }).ari.servers).to.deep.equal([
      { name: 'pbx1:8088', url: 'http://pbx1:8088' }, { name: 'east', url: 'http://10.0.0.2:8088' },
    ]);
    expect(problemsOf({ ...minimal, ...database, ARI_URL: 'a=http://pbx1:8088,a=http://pbx2:8088' })[0]).to.match(/^ARI_URL: gives two servers one name/);
    expect(problemsOf({ ...minimal, ARI_URL: 'http://pbx1:8088,http://pbx2:8088' })).to.deep.equal(['ARI_URL: several Asterisk servers need DATABASE_URL (distributed mode)']);
    expect(problemsOf({ ...minimal, ...database, ARI_URL: 'http://pbx1:8088,http://pbx1:8088/' })[0]).to.match(/^ARI_URL: names one Asterisk server twice/);
    expect(problemsOf({ ...minimal, ...database, ARI_URL: 'http://pbx1:8088,ftp://pbx2' })[0]).to.match(/^ARI_URL: must start with http:\/\/ or https:\/\/ \(entry 2\)/);
    // A password with a comma in it is cut in two by the list: neither half is repeated.
    expect(problemsOf({ ...minimal, ...database, ARI_URL: 'http://konami:s3cr3t,x@h:8088' }).join()).not.to.contain('s3cr3t');
    expect(problemsOf({ ...minimal, ARI_URL: 'http://h:8088/?t=secret' })[0]).to.match(/^ARI_URL: must be the server address only, without a query/).and.not.contain('secret');
  });

  it('rejects an ARI_URL with credentials or a path, and never echoes the password', function () {
    expect(problemsOf({ ...minimal, ARI_URL: 'http://u:hunter2@host:8088' })[0]).to.match(/^ARI_URL: must not carry credentials/).and.not.contain('hunter2');
    expect(problemsOf({ ...minimal, ARI_URL: 'http://host:8088/ari' })[0]).to.match(/^ARI_URL: .*without a path/);
    expect(problemsOf({ ...minimal, ARI_URL: 'not a url' })[0]).to.match(/^ARI_URL: must be a URL/);
    const all = problemsOf({ ARI_USERNAME: 'konami', ARI_PASSWORD: '', HTTP_PORT: 'x' }).join('\n');
    expect(all).to.match(/ARI_PASSWORD: is required/);
  });

  it('reads dial routes: DIAL_TEMPLATE is "default" ({exten} or {target}), DIAL_ROUTES adds named ones', function () {
    const c = loadConfig({ ...minimal, DIAL_TEMPLATE: 'PJSIP/{target}', DIAL_ROUTES: 'pstn=PJSIP/{target}@trunk;lab=Local/{target}@lab/n' });
    expect(c.dialRoutes).to.deep.equal({ default: 'PJSIP/{target}', pstn: 'PJSIP/{target}@trunk', lab: 'Local/{target}@lab/n' });
    expect(problemsOf({ ...minimal, DIAL_ROUTES: 'pstn=PJSIP/2600' })[0]).to.match(/^DIAL_ROUTES: route pstn: the template must contain \{target\}/);
  });

  it('DATABASE_URL switches to PostgreSQL; a bad one stops the start, named, without echoing what may be a password', function () {
    expect(loadConfig(minimal).databaseUrl, 'files by default').to.equal(undefined);
    expect(loadConfig({ ...minimal, DATABASE_URL: 'postgres://konami:pw@db:5432/konami' }).databaseUrl).to.equal('postgres://konami:pw@db:5432/konami');
    for (const bad of ['mysql://konami:hunter2@db/konami', 'postgres://konami:hunter2@db', 'konami:hunter2']) {
      const problems = problemsOf({ ...minimal, DATABASE_URL: bad });
      expect(problems, bad).to.have.length(1);
      expect(problems[0]).to.match(/^DATABASE_URL: /).and.not.contain('hunter2');
    }
  });

  it('rejects a non-numeric or fractional port', function () {
    expect(problemsOf({ ...minimal, HTTP_PORT: '80.5' })[0]).to.match(/^HTTP_PORT: must be a whole number from 0 to 65535/);
    expect(problemsOf({ ...minimal, HTTP_PORT: 'eighty' })[0]).to.match(/^HTTP_PORT/);
  });
});
