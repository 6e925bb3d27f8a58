import { expect } from 'chai';
import { Metrics, callMetrics } from '../../lib/metrics.js';

describe('Prometheus metrics', function () {
  it('renders counters with labels and a live gauge in the text format', function () {
    let calls = 3;
    const m = new Metrics(() => calls);
    const c = callMetrics(m);
    c.callEntered();
    c.codeMatched('transfer');
    c.codeMatched('transfer');
    c.transferStarted();
    c.transferEnded('failed', 17);
    m.apiRequests.inc({ route: '/v1/accounts/:accountId/channels', status: '200' });
    const text = m.render();
    expect(text).to.contain('# TYPE konami_active_calls gauge\nkonami_active_calls 3\n');
    expect(text).to.contain('konami_codes_matched_total{module="transfer"} 2');
    expect(text).to.contain('konami_transfers_ended_total{cause="17",outcome="failed"} 1');
    expect(text).to.contain('konami_api_requests_total{route="/v1/accounts/:accountId/channels",status="200"} 1');
    expect(text).to.contain('# TYPE konami_ari_reconnects_total counter');
    calls = 0;
    expect(m.render()).to.contain('konami_active_calls 0');
  });

  it('escapes label values', function () {
    const m = new Metrics();
    m.codesMatched.inc({ module: 'a"b\\c\nd' });
    expect(m.render()).to.contain('konami_codes_matched_total{module="a\\"b\\\\c\\nd"} 1');
  });

  it('reports how late the event loop was: a 60 ms block shows as a max of at least 50 ms, and a scrape does not hide it', async function () {
    const m = new Metrics();
    m.watchEventLoop(60_000);
    try {
      await new Promise((r) => setTimeout(r, 30));
      const until = Date.now() + 60;
      while (Date.now() < until) {
        // the event loop is blocked
      }
      await new Promise((r) => setTimeout(r, 30));
      const max = () => Number(/^konami_event_loop_delay_seconds\{quantile="1"\} (\S+)$/m.exec(m.render())?.[1]);
      expect(max()).to.be.at.least(0.05);
      expect(max(), 'the next scrape still shows it').to.be.at.least(0.05);
    } finally {
      m.stop();
    }
  });

  it('the transfer set-up histogram counts by upper bound, cumulatively, and skips a value that is no number', function () {
    const m = new Metrics();
    for (const seconds of [0.004, 0.015, 0.015, 0.3, Number.NaN, 7]) m.transferSetup.observe(seconds);
    const text = m.render();
    expect(text).to.match(/^konami_transfer_setup_seconds_bucket\{le="0.005"\} 1$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_bucket\{le="0.02"\} 3$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_bucket\{le="0.5"\} 4$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_bucket\{le="5"\} 4$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_bucket\{le="\+Inf"\} 5$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_count 5$/m);
    expect(text).to.match(/^konami_transfer_setup_seconds_sum 7.334$/m);
  });
});
