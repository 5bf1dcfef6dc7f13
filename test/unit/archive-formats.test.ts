import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { crc32, deflateRawSync } from 'node:zlib';
import * as unzipper from 'unzipper';
import { CopyOutParser, type CopyRowEncoder } from '../../src/repositories/copy-out-rows';
import { tarEnd, tarFileHeader, tarPadding } from '../../src/services/export/tar-format';
import { ZipWriter } from '../../src/services/export/zip-format';
import { csvRowEncoder } from '../../src/repositories/manifest-csv';
import { binaryRowToJsonl } from '../../src/repositories/manifest-jsonl';
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

/** A backend message: its type byte, its length, its payload. */
function message(type: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

/** What the server sends for a COPY TO STDOUT: CopyOutResponse, one CopyData per payload, CopyDone, then `after`. */
function copyOut(payloads: Buffer[], after: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([
    message('H', Buffer.from([0, 0, 0])),
    ...payloads.map((payload) => message('d', payload)),
    message('c'),
    after,
  ]);
}

const COMMAND_COMPLETE = message('C', Buffer.from('COPY 2\0'));

/**
 * The bytes fed `size` at a time, as a socket may split them: the output, each row as its
 * chunk's rowEnds cut it, and what was handed back after CopyDone (or from an ErrorResponse).
 */
function feedInPieces(encoder: CopyRowEncoder, bytes: Buffer, size: number, prefix?: string) {
  const parser = new CopyOutParser(encoder, prefix === undefined ? undefined : Buffer.from(prefix));
  const out: Buffer[] = [];
  const rows: string[] = [];
  /** Output that is not part of a row yet (a prefix read before the first row). */
  let carry = Buffer.alloc(0);
  let handedBack: { done?: Buffer; error?: Buffer } = {};
  for (let at = 0; at < bytes.length; at += size) {
    const outcome = parser.feed(bytes.subarray(at, at + size));
    const chunk = parser.take();
    if (chunk) {
      out.push(chunk.bytes);
      let from = 0;
      for (const end of chunk.rowEnds) {
        rows.push(Buffer.concat([carry, chunk.bytes.subarray(from, end)]).toString('utf8'));
        carry = Buffer.alloc(0);
        from = end;
      }
      carry = Buffer.concat([carry, chunk.bytes.subarray(from)]);
    }
    if (outcome.done || outcome.error) {
      const rest = bytes.subarray(at + size);
      handedBack = {
        done: outcome.done && Buffer.concat([outcome.done, rest]),
        error: outcome.error && Buffer.concat([outcome.error, rest]),
      };
      break;
    }
  }
  return { text: Buffer.concat(out).toString('utf8'), rows, handedBack, parsed: parser.rows };
}

describe('CopyOutParser', () => {
  const lines = ['1,"a"\n', '2,"multi\nline, ""quoted"""\n', '3,\n'];
  const bytes = copyOut(
    lines.map((line) => Buffer.from(line)),
    COMMAND_COMPLETE,
  );

  it.each([1, 2, 5, 7, 64, 1 << 20])(
    'one row per CopyData message, whatever the split (%i bytes at a time), and the rest handed back',
    (size) => {
      const fed = feedInPieces(csvRowEncoder(false), bytes, size, 'id,value\n');
      expect(fed.text).toBe(`id,value\n${lines.join('')}`);
      // The header belongs to no row: the first row's end is after it.
      expect(fed.rows).toEqual([`id,value\n${lines[0]}`, lines[1], lines[2]]);
      expect(fed.parsed).toBe(3);
      expect(fed.handedBack.done).toEqual(COMMAND_COMPLETE);
    },
  );

  it.each([1, 3, 1 << 20])(
    'an ErrorResponse is handed to the client whole, from its first byte (%i bytes at a time)',
    (size) => {
      const error = message('E', Buffer.from('SERROR\0C57014\0Mcanceled\0\0'));
      const failing = Buffer.concat([
        message('H', Buffer.from([0, 0, 0])),
        message('d', Buffer.from('1,"a"\n')),
        error,
        message('Z', Buffer.from('E')),
      ]);
      const fed = feedInPieces(csvRowEncoder(false), failing, size);
      expect(fed.handedBack.error).toEqual(failing.subarray(failing.indexOf(error)));
      expect(fed.rows).toEqual(['1,"a"\n']);
    },
  );

  it('notices and parameter status in the middle of the data are skipped', () => {
    const notice = message('N', Buffer.from('SNOTICE\0Mhello\0\0'));
    const fed = feedInPieces(
      csvRowEncoder(false),
      Buffer.concat([
        message('H', Buffer.from([0, 0, 0])),
        message('d', Buffer.from('1\n')),
        notice,
        message('S', Buffer.from('a\0b\0')),
        message('d', Buffer.from('2\n')),
        message('c'),
      ]),
      3,
    );
    expect(fed.rows).toEqual(['1\n', '2\n']);
  });
});

describe('binaryRowToJsonl', () => {
  const BINARY_HEADER = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    Buffer.alloc(8),
  ]);
  const BINARY_TRAILER = Buffer.from([0xff, 0xff]);
  /** One manifest row as binary COPY writes it: field count, then each field's length and bytes. */
  function binaryRow(row: Array<number | string | null>): Buffer {
    const count = Buffer.alloc(2);
    count.writeInt16BE(row.length);
    const parts: Buffer[] = [count];
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
    return Buffer.concat(parts);
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

  /** Binary COPY as the server sends it: the header in the first row's message, the trailer in its own. */
  const binaryMessages = (data: Buffer[]) =>
    copyOut(
      data.map((row, i) => (i === 0 ? Buffer.concat([BINARY_HEADER, row]) : row)),
      COMMAND_COMPLETE,
    );

  it.each([1, 3, 7, 64, 1 << 20])(
    'writes what JSON.stringify writes, fed %i bytes at a time',
    (size) => {
      const fed = feedInPieces(
        binaryRowToJsonl(),
        binaryMessages([...rows.map(binaryRow), BINARY_TRAILER]),
        size,
      );
      expect(fed.text).toBe(expected);
      expect(fed.rows).toEqual(expected.split(/(?<=\n)/));
      expect(fed.parsed).toBe(rows.length);
    },
  );

  it('no rows: the header and the trailer in one message', () => {
    const fed = feedInPieces(binaryRowToJsonl(), binaryMessages([BINARY_TRAILER]), 1 << 20);
    expect(fed.text).toBe('');
    expect(fed.parsed).toBe(0);
  });

  it('data that ends without its trailer is an error, not a short manifest', () => {
    expect(() =>
      feedInPieces(binaryRowToJsonl(), binaryMessages(rows.map(binaryRow)), 1 << 20),
    ).toThrow(/ended in the middle of a row/);
  });

  it('a row cut short inside its message is an error', () => {
    const row = binaryRow(rows[0]);
    expect(() =>
      feedInPieces(
        binaryRowToJsonl(),
        binaryMessages([row.subarray(0, row.length - 3), BINARY_TRAILER]),
        1 << 20,
      ),
    ).toThrow(/row cut off/);
  });
});

describe('csvRowEncoder with formula protection', () => {
  const values = ['=1+2', 'plain', '+x', '-', '@a', '\tt', '\rr', 'a,"=b', ',"+', '"@', '', "'=q"];
  const rows = values.map((value, i) => [i, value, i % 2 ? null : value, 7]);
  /** What COPY writes with FORCE_QUOTE on the text columns: csv-stringify's quoted_string. */
  const expected = stringifyCsv(
    rows.map((row) => row.map((v) => (typeof v === 'string' ? neutraliseCsvFormula(v) : v))),
    { quoted_string: true },
  );

  it.each([1, 2, 3, 5, 64, 1 << 20])(
    'gives what neutraliseCsvFormula gives, fed %i bytes at a time',
    (size) => {
      // One message per row, as COPY sends them.
      const lines = rows.map((row) => Buffer.from(stringifyCsv([row], { quoted_string: true })));
      const fed = feedInPieces(csvRowEncoder(true), copyOut(lines), size);
      expect(fed.text).toBe(expected);
      expect(fed.rows).toHaveLength(rows.length);
    },
  );
});

describe('csvRowEncoder without formula protection', () => {
  const values = ['', '""', '"', ',', 'a,"",b', '",', '"",', 'multi\nline', 'plain', null];
  const rows = values.flatMap((value, i) => [
    [i, value, 'x', 7],
    [i, 'x', value, 7],
    [i, value, value, value],
  ]);
  /** What COPY writes without FORCE_QUOTE: a cell quoted when it must be, and `""` for ''. */
  const copyCell = (value: string | number | null) => {
    if (value === null) return '';
    const text = String(value);
    return text === '' || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = rows.map((row) => Buffer.from(`${row.map(copyCell).join(',')}\n`));

  it.each([1, 4, 1 << 20])(
    'writes what csv-stringify writes, an empty string as an empty cell, fed %i bytes at a time',
    (size) => {
      const fed = feedInPieces(csvRowEncoder(false), copyOut(lines), size);
      expect(fed.text).toBe(stringifyCsv(rows));
      expect(fed.rows).toHaveLength(rows.length);
    },
  );
});
