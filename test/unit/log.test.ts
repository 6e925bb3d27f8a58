import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/log.js';

/** What a logger wrote, as text. */
function capture(format: 'json' | 'pretty' | 'auto', tty = false): { stream: PassThrough & { isTTY?: boolean }; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (tty) stream.isTTY = true;
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  return { stream, text: () => out };
}

describe('log lines', function () {
  it('readable ones say the time, the level, the call and the message on one line, then the other fields; secrets stay out', function () {
    const { stream, text } = capture('pretty');
    const log = createLogger('info', stream, 'pretty');
    log.child({ call_id: 'caller-1', account: 'acme' }).info({ target: '2600', req: { authorization: 'Basic c2VjcmV0' } }, 'transfer started');
    log.child({ component: 'lease' }).warn({ err: new Error('database unreachable') }, 'lease not renewed');
    const [first, second] = text().trimEnd().split('\n');
    expect(first).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[caller-1\] transfer started {2}account=acme target=2600 req=\{"authorization":"\[redacted\]"\}$/);
    expect(second).to.match(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}\(lease\) lease not renewed {2}err=database unreachable$/);
    expect(text()).not.to.contain('c2VjcmV0');
  });

  it('auto: readable at a terminal, JSON lines otherwise (a pipe, a file, a log collector)', function () {
    const terminal = capture('auto', true);
    createLogger('info', terminal.stream, 'auto').info('hello');
    expect(terminal.text()).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}hello\n$/);
    const pipe = capture('auto');
    createLogger('info', pipe.stream, 'auto').info('hello');
    expect(JSON.parse(pipe.text()).msg).to.equal('hello');
  });
});
