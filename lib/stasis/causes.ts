// Q.850 hangup causes as Asterisk reports them (ChannelDestroyed.cause) and
// accepts them (DELETE /channels/{id}?reason_code=).
export const Cause = {
  UNALLOCATED: 1,
  NO_ROUTE_DESTINATION: 3,
  NORMAL_CLEARING: 16,
  USER_BUSY: 17,
  NO_USER_RESPONSE: 18,
  NO_ANSWER: 19,
  SUBSCRIBER_ABSENT: 20,
  CALL_REJECTED: 21,
  DESTINATION_OUT_OF_ORDER: 27,
  INVALID_NUMBER_FORMAT: 28,
  NORMAL_UNSPECIFIED: 31,
  CONGESTION: 34,
  NETWORK_OUT_OF_ORDER: 38,
  TEMPORARY_FAILURE: 41,
  SWITCH_CONGESTION: 42,
  CHANNEL_UNACCEPTABLE: 44,
  CHAN_NOT_IMPLEMENTED: 66,
  INTERWORKING: 127,
} as const;

export type CauseCode = (typeof Cause)[keyof typeof Cause];

const NAMES = new Map<number, string>(Object.entries(Cause).map(([k, v]) => [v, k.toLowerCase()]));

export function causeName(cause: number): string {
  return NAMES.get(cause) ?? `cause_${cause}`;
}

