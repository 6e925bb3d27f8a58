// RFC 4733 telephone events (DTMF as RTP) for a whole digit string, as a pcap
// file sipp can play (play_pcap_audio): one event per digit, packets every
// 20 ms, three end packets, and sequence numbers and timestamps that only go
// forward, as a real phone sends them (Asterisk drops an event that repeats
// the previous one's timestamp or goes back in sequence).

const EVENT_CODE: Record<string, number> = { '*': 10, '#': 11, A: 12, B: 13, C: 14, D: 15 };
for (let d = 0; d <= 9; d++) EVENT_CODE[String(d)] = d;

export interface DtmfTiming {
  /** How long each digit is held (ms, a multiple of 20). */
  eventMs: number;
  /** Silence between two digits (ms). */
  gapMs: number;
  payloadType: number;
}

const HEADERS = 14 + 20 + 8; // Ethernet, IPv4, UDP

function packet(rtp: Buffer): Buffer {
  const p = Buffer.alloc(HEADERS + rtp.length);
  p.writeUInt16BE(0x0800, 12); // Ethernet: IPv4
  p.writeUInt8(0x45, 14); // IPv4, 20-byte header
  p.writeUInt16BE(20 + 8 + rtp.length, 16);
  p.writeUInt8(64, 22); // TTL
  p.writeUInt8(17, 23); // UDP
  p.writeUInt32BE(0x7f000001, 26);
  p.writeUInt32BE(0x7f000001, 30);
  p.writeUInt16BE(6000, 34);
  p.writeUInt16BE(6001, 36);
  p.writeUInt16BE(8 + rtp.length, 38);
  rtp.copy(p, HEADERS);
  return p;
}

/** The pcap (Ethernet link type) of `digits` as RFC 4733 events. */
export function dtmfPcap(digits: string, timing: DtmfTiming = { eventMs: 120, gapMs: 150, payloadType: 101 }): Buffer {
  const records: Buffer[] = [];
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(65535, 16);
  global.writeUInt32LE(1, 20);
  records.push(global);
  let seq = 1000;
  let ms = 0; // time of the packet being written, from the start of the file
  const add = (atMs: number, rtp: Buffer) => {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(1_700_000_000 + Math.floor(atMs / 1000), 0);
    header.writeUInt32LE((atMs % 1000) * 1000, 4);
    const p = packet(rtp);
    header.writeUInt32LE(p.length, 8);
    header.writeUInt32LE(p.length, 12);
    records.push(header, p);
  };
  const rtp = (marker: boolean, s: number, timestamp: number, event: number, end: boolean, duration: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt8(0x80, 0);
    b.writeUInt8((marker ? 0x80 : 0) | timing.payloadType, 1);
    b.writeUInt16BE(s & 0xffff, 2);
    b.writeUInt32BE(timestamp >>> 0, 4);
    b.writeUInt32BE(0x4b4f4e41, 8);
    b.writeUInt8(event, 12);
    b.writeUInt8((end ? 0x80 : 0) | 10, 13); // volume -10 dBm0
    b.writeUInt16BE(duration, 14);
    return b;
  };
  for (const digit of digits) {
    const event = EVENT_CODE[digit.toUpperCase()];
    if (event === undefined) throw new Error(`not a DTMF digit: ${JSON.stringify(digit)}`);
    const start = 8 * ms; // 8 kHz clock
    const packets = Math.max(1, Math.round(timing.eventMs / 20));
    for (let k = 0; k < packets; k++) {
      add(ms, rtp(k === 0, seq++, start, event, false, (k + 1) * 160));
      ms += 20;
    }
    const endSeq = seq++;
    for (let r = 0; r < 3; r++) add(ms + r, rtp(false, endSeq, start, event, true, packets * 160));
    ms += timing.gapMs;
  }
  return Buffer.concat(records);
}
