// The RFC 4733 pcap the SIP phone test plays (test/harness/rtp-events.ts).
import { expect } from 'chai';
import { dtmfPcap } from '../harness/rtp-events.js';

interface Rtp { marker: boolean; seq: number; timestamp: number; event: number; end: boolean; duration: number; atMs: number }

function read(pcap: Buffer): Rtp[] {
  expect(pcap.readUInt32LE(0)).to.equal(0xa1b2c3d4);
  const out: Rtp[] = [];
  for (let off = 24; off < pcap.length;) {
    const sec = pcap.readUInt32LE(off);
    const usec = pcap.readUInt32LE(off + 4);
    const len = pcap.readUInt32LE(off + 8);
    const r = off + 16 + 42;
    out.push({
      atMs: (sec - 1_700_000_000) * 1000 + usec / 1000,
      marker: (pcap[r + 1]! & 0x80) !== 0,
      seq: pcap.readUInt16BE(r + 2),
      timestamp: pcap.readUInt32BE(r + 4),
      event: pcap[r + 12]!,
      end: (pcap[r + 13]! & 0x80) !== 0,
      duration: pcap.readUInt16BE(r + 14),
    });
    off += 16 + len;
  }
  return out;
}

describe('RFC 4733 telephone events as a pcap', function () {
  it('one event per digit (* = 10, # = 11), each opened by a marked packet and closed by three end packets', function () {
    const packets = read(dtmfPcap('*21#'));
    const starts = packets.filter((p) => p.marker);
    expect(starts.map((p) => p.event)).to.deep.equal([10, 2, 1, 11]);
    const ends = packets.filter((p) => p.end);
    expect(ends).to.have.length(12);
    expect(ends.slice(0, 3).every((p) => p.duration === 6 * 160 && p.seq === ends[0]!.seq)).to.equal(true);
  });

  it('timestamps and sequence numbers only go forward, so no event looks like a repeat of the one before', function () {
    const packets = read(dtmfPcap('2600'));
    const stamps = [...new Set(packets.map((p) => p.timestamp))];
    expect(stamps).to.have.length(4);
    expect([...stamps].sort((a, b) => a - b)).to.deep.equal(stamps);
    for (let i = 1; i < packets.length; i++) {
      expect(packets[i]!.seq).to.be.at.least(packets[i - 1]!.seq);
      expect(packets[i]!.atMs).to.be.at.least(packets[i - 1]!.atMs);
    }
  });

  it('refuses a character that is not a DTMF digit', function () {
    expect(() => dtmfPcap('12x')).to.throw(/not a DTMF digit/);
  });
});
