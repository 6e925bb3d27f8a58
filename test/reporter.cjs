// mocha's spec reporter, plus a closing "N passed, N failed, N skipped" line
// and the counts in test-output/counts/ for scripts/test.sh to sum.
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

class Reporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const suite = (options.reporterOption && options.reporterOption.suite) || 'tests';
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      const counts = { passed: s.passes, failed: s.failures, skipped: s.pending };
      const dir = path.join(process.cwd(), 'test-output', 'counts');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${suite}.json`), JSON.stringify(counts));
      process.stdout.write(`${suite}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    });
  }
}

module.exports = Reporter;
