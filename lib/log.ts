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

export const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * JSON lines (for machines), or one readable line per record (for a person
 * at a terminal: time, level, call, message, then the other fields). `auto`:
 * readable when the stream is a terminal.
 */
export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stdout, format: LogFormat = 'json'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && (stream as { isTTY?: boolean }).isTTY === true);
  return bunyan.createLogger({
    name: 'konami',
    level,
    ...(pretty ? { streams: [{ type: 'raw', level, stream: { write: (r: object) => void stream.write(prettyLine(r as LogRecord)) } as unknown as NodeJS.WritableStream }] } : { stream }),
    serializers: { err: bunyan.stdSerializers.err, req: redact, body: redact, config: redact },
  });
}

interface LogRecord {
  time: Date;
  level: number;
  msg: string;
  [k: string]: unknown;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** What every record carries, said once by the line's shape instead. */
const PLAIN = new Set(['name', 'hostname', 'pid', 'v', 'level', 'time', 'msg', 'call_id', 'component']);

/** `12:04:32.380 INFO  [caller-1a2b…] transfer started  target=2600 account=…` */
export function prettyLine(r: LogRecord): string {
  const t = r.time instanceof Date ? r.time : new Date(String(r.time));
  const time = `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}:${String(t.getSeconds()).padStart(2, '0')}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  const level = (LEVEL_NAMES[r.level] ?? String(r.level)).padEnd(5);
  const where = r.call_id ? ` [${String(r.call_id)}]` : r.component ? ` (${String(r.component)})` : '';
  const rest = Object.entries(r).filter(([k, v]) => !PLAIN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : k === 'err' && v && typeof v === 'object' && 'message' in v ? String((v as { message: unknown }).message) : JSON.stringify(v)}`);
  return `${time} ${level}${where} ${r.msg}${rest.length > 0 ? `  ${rest.join(' ')}` : ''}\n`;
}

/** A logger that writes nowhere, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return bunyan.createLogger({ name: 'konami', level: bunyan.FATAL + 1, streams: [] });
}
