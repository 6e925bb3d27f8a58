import bunyan from 'bunyan';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Logger = bunyan;

/** Field names whose values never reach a log line. */
const SECRET_KEYS = /pass(word)?|secret|api_?key|token|authorization/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_KEYS.test(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stdout): Logger {
  return bunyan.createLogger({
    name: 'konami',
    level,
    stream,
    serializers: { err: bunyan.stdSerializers.err, req: redact, body: redact, config: redact },
  });
}

/** A logger that writes nowhere, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return bunyan.createLogger({ name: 'konami', level: bunyan.FATAL + 1, streams: [] });
}
