import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import * as tar from 'tar-stream';
import * as unzipper from 'unzipper';
import { RecordCounter } from '../../src/services/export/record-counter';
import { tarEnd, tarFileHeader, tarPadding } from '../../src/services/export/tar-format';
import { ZipWriter } from '../../src/services/export/zip-format';
import { neutralizeCsvFormula } from '../../src/repositories/manifest-sql';

async function readTar(bytes: Buffer): Promise<Array<[string, Buffer]>> {
  const extract = tar.extract();
  const entries: Array<[string, Buffer]> = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push([entry.header.name, Buffer.concat(chunks)]);
    }
  })();
  await pipeline(Readable.from([bytes]), extract);
  await reading;
  return entries;
}

describe('tar format', () => {
  it('names longer than 100 bytes or not ASCII, and empty files, read back exactly', async () => {
    const files: Array<[string, Buffer]> = [
      ['images/1-short.jpg', Buffer.from('abc')],
      [`images/2-${'x'.repeat(91)}`, Buffer.alloc(0)], // exactly 100 bytes: ustar alone
      [`images/3-${'y'.repeat(300)}.jpg`, Buffer.alloc(512, 7)],
      ['images/4-猫🐱 "quoted", new\nline.jpg', Buffer.alloc(513, 1)],
    ];
    expect(files[1][0]).toHaveLength(100);
    const mtime = new Date('2026-01-02T03:04:05Z');
    const parts = files.flatMap(([name, bytes]) => [
      tarFileHeader(name, bytes.length, mtime),
      bytes,
      tarPadding(bytes.length),
    ]);
    const archive = Buffer.concat([...parts, tarEnd()]);
    expect(archive.length % 512).toBe(0);
    expect(await readTar(archive)).toEqual(files);
  });
});

describe('zip format', () => {
  it('stored and streamed (deflated) entries read back with their CRCs', async () => {
    const zip = new ZipWriter(new Date());
    const stored = Buffer.from('stored bytes');
    const streamed = Buffer.from('streamed '.repeat(100));
    const deflated = deflateRawSync(streamed);
    const archive = Buffer.concat([
      zip.beginStreamed('manifest.jsonl', 'deflate'),
      deflated,
      zip.endStreamed(crc32(streamed), deflated.length, streamed.length),
      zip.storedFile('images/1-猫.jpg', crc32(stored), stored.length),
      stored,
      zip.finish(),
    ]);
    const directory = await unzipper.Open.buffer(archive);
    const entries = await Promise.all(
      directory.files.map(async (f) => [f.path, (await f.buffer()).toString(), f.crc32 >>> 0]),
    );
    expect(entries).toEqual([
      ['manifest.jsonl', streamed.toString(), crc32(streamed)],
      ['images/1-猫.jpg', stored.toString(), crc32(stored)],
    ]);
  });

  it('more than 65,535 entries get ZIP64 end records and all read back', async () => {
    const zip = new ZipWriter(new Date());
    const parts: Buffer[] = [];
    const count = 70_000;
    for (let i = 0; i < count; i++) {
      const bytes = Buffer.from(String(i));
      parts.push(zip.storedFile(`images/${i}.bin`, crc32(bytes), bytes.length), bytes);
    }
    parts.push(zip.finish());
    const directory = await unzipper.Open.buffer(Buffer.concat(parts));
    expect(directory.files).toHaveLength(count);
    const last = directory.files[count - 1];
    expect(last.path).toBe(`images/${count - 1}.bin`);
    expect((await last.buffer()).toString()).toBe(String(count - 1));
  });
});

describe('RecordCounter', () => {
  const rows = [
    ['plain', 'a,b'],
    ['quoted "x"', 'multi\nline\r\nvalue'],
    ['""', '\n'],
    ['last', ''],
  ];
  const csv = Buffer.from(stringifyCsv(rows));

  it('counts csv records across any chunking, newlines inside quotes not ending one', () => {
    for (let size = 1; size <= csv.length; size++) {
      const counter = new RecordCounter(true);
      let records = 0;
      for (let at = 0; at < csv.length; at += size) {
        records += counter.scan(csv.subarray(at, at + size), 0, Infinity).records;
      }
      expect(records).toBe(rows.length);
    }
  });

  it('stops after `limit` records and says where the last one ended', () => {
    const counter = new RecordCounter(true);
    const first = counter.scan(csv, 0, 2);
    expect(first.records).toBe(2);
    expect(csv.subarray(0, first.end).toString()).toBe(stringifyCsv(rows.slice(0, 2)));
    expect(counter.scan(csv, first.end, Infinity).records).toBe(2);
  });

  it('jsonl: every newline ends a record, quotes are no concern', () => {
    const counter = new RecordCounter(false);
    expect(counter.scan(Buffer.from('{"a":"\\""}\n{"b":"\\n"}\n'), 0, Infinity).records).toBe(2);
  });
});

describe('neutralizeCsvFormula', () => {
  it.each([
    ['=1+2', "'=1+2"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', "'\rx"],
    ['a=1', 'a=1'],
    ['', ''],
    [' =1', ' =1'],
    ["'=1", "'=1"],
  ])('%j becomes %j', (value, expected) => {
    expect(neutralizeCsvFormula(value)).toBe(expected);
  });
});
