// Shapes shared by the metaflow engine and its users.

/** The caller's leg is `a`, the called party's is `b` (as in Kazoo). */
export type LegRole = 'a' | 'b';

export type ListenOn = 'a' | 'b' | 'both';

export interface CodeAction {
  module: string;
  data: Record<string, unknown>;
}

/** An account's metaflows, validated and with defaults applied. */
export interface MetaflowConfig {
  binding_digit: string;
  /** Milliseconds allowed between two digits of a code. */
  digit_timeout: number;
  listen_on: ListenOn;
  numbers: Record<string, CodeAction>;
  /** Tried in declared order; each must match the whole code. */
  patterns: Record<string, CodeAction>;
}
