import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, deflateRawSync } from 'node:zlib';
import * as unzipper from 'unzipper';
import { RecordCounter } from '../../src/services/export/record-counter';
import { tarEnd, tarFileHeader, tarPadding } from '../../src/services/export/tar-format';
import { ZipWriter } from '../../src/services/export/zip-format';
import { CsvFormulaNeutraliser } from '../../src/repositories/csv-formula-stream';
import { CopyBinaryToJsonl } from '../../src/repositories/manifest-jsonl';
import { MANIFEST_COLUMNS, neutraliseCsvFormula } from '../../src/repositories/manifest-sql';
import { tarEntries } from '../helpers/archives';

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
    expect(await tarEntries(archive)).toEqual(files);
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

describe('neutraliseCsvFormula', () => {
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
    expect(neutraliseCsvFormula(value)).toBe(expected);
  });
});

describe('CopyBinaryToJsonl', () => {
  /** Binary COPY bytes of manifest rows, as PostgreSQL writes them. */
  function binaryCopy(rows: Array<Array<number | string | null>>): Buffer {
    const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
    for (const row of rows) {
      const count = Buffer.alloc(2);
      count.writeInt16BE(row.length);
      parts.push(count);
      for (const value of row) {
        const length = Buffer.alloc(4);
        if (value === null) {
          length.writeInt32BE(-1);
          parts.push(length);
        } else if (typeof value === 'number') {
          length.writeInt32BE(4);
          const int = Buffer.alloc(4);
          int.writeInt32BE(value);
          parts.push(length, int);
        } else {
          const text = Buffer.from(value, 'utf8');
          length.writeInt32BE(text.length);
          parts.push(length, text);
        }
      }
    }
    const trailer = Buffer.alloc(2);
    trailer.writeInt16BE(-1);
    return Buffer.concat([...parts, trailer]);
  }

  const odd = [
    'q"uote',
    'back\\slash',
    'nl\ncr\rtab\t',
    '\b\f\u0001\u001f\u007f',
    '猫🐱',
    '',
    '\u2028',
  ];
  const rows = odd.map((value, i) => [
    i + 1,
    7,
    `https://e.com/${value}`,
    value,
    null,
    -5,
    i === 0 ? -2_147_483_648 : i * 1001,
    2_147_483_647,
    i % 2 ? null : value,
  ]);
  const expected = rows
    .map(
      (row) =>
        `${JSON.stringify(Object.fromEntries(MANIFEST_COLUMNS.map((c, i) => [c, row[i]])))}\n`,
    )
    .join('');

  it.each([1, 3, 7, 64, 1 << 20])(
    'writes what JSON.stringify writes, fed %i bytes at a time',
    async (size) => {
      const bytes = binaryCopy(rows);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
      const converter = new CopyBinaryToJsonl();
      const out: Buffer[] = [];
      await pipeline(
        Readable.from(chunks),
        converter,
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            out.push(chunk);
            done();
          },
        }),
      );
      expect(Buffer.concat(out).toString('utf8')).toBe(expected);
      expect(converter.rows).toBe(rows.length);
      expect(converter.bytes).toBe(Buffer.byteLength(expected));
    },
  );

  it('data cut off in the middle of a row is an error, not a short manifest', async () => {
    const bytes = binaryCopy(rows);
    await expect(
      pipeline(
        Readable.from([bytes.subarray(0, bytes.length - 30)]),
        new CopyBinaryToJsonl(),
        async function* (source) {
          for await (const chunk of source) yield chunk;
        },
      ),
    ).rejects.toThrow(/ended in the middle of a row/);
  });
});

describe('CsvFormulaNeutraliser', () => {
  const values = ['=1+2', 'plain', '+x', '-', '@a', '\tt', '\rr', 'a,"=b', ',"+', '"@', '', "'=q"];
  const rows = values.map((value, i) => [i, value, i % 2 ? null : value, 7]);
  /** What COPY writes with FORCE_QUOTE on the text columns: csv-stringify's quoted_string. */
  const copyCsv = Buffer.from(stringifyCsv(rows, { quoted_string: true }));
  const expected = stringifyCsv(
    rows.map((row) => row.map((v) => (typeof v === 'string' ? neutraliseCsvFormula(v) : v))),
    { quoted_string: true },
  );

  it.each([1, 2, 3, 5, 64, 1 << 20])(
    'gives what neutraliseCsvFormula gives, fed %i bytes at a time',
    async (size) => {
      const chunks: Buffer[] = [];
      for (let at = 0; at < copyCsv.length; at += size) {
        chunks.push(copyCsv.subarray(at, at + size));
      }
      const out: Buffer[] = [];
      await pipeline(
        Readable.from(chunks),
        new CsvFormulaNeutraliser(),
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            out.push(chunk);
            done();
          },
        }),
      );
      expect(Buffer.concat(out).toString('utf8')).toBe(expected);
    },
  );
});
