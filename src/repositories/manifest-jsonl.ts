import { Transform, type TransformCallback } from 'node:stream';
import { MANIFEST_COLUMNS, type ManifestColumn } from './manifest-sql';

/**
 * Turns `COPY (…) TO STDOUT WITH (FORMAT binary)` of the manifest's columns into jsonl: one
 * JSON object per row, keys in column order, byte for byte what `JSON.stringify` writes for the
 * row (compact, the same escapes: \" \\ \b \f \n \r \t and \u00xx for other control
 * characters; everything else, UTF-8 included, as it is).
 *
 * Why not row_to_json in SQL: building JSON costs the server about four times what COPY's
 * binary output costs, and the server is the bottleneck of an export. Nor cheaper SQL: each
 * line concatenated from the columns (to_json for text cells) and streamed raw through COPY csv
 * with \x01 as quote and \x02 as delimiter reached 0.42x of csv COPY's throughput where this
 * converter reached 0.81x (300,000 rows, one run, 2026-11-25). Binary COPY is the
 * cheapest output PostgreSQL has, and the conversion here runs on the client's own core,
 * working on bytes (no JavaScript string per value).
 * https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */

const INT_COLUMNS: ReadonlySet<ManifestColumn> = new Set([
  'id',
  'crawl_job_id',
  'width',
  'height',
  'file_size',
]);
/** Per column: its key as written before the value (`{"id":`, `,"filename":`), and its kind. */
const FIELDS = MANIFEST_COLUMNS.map((column, i) => ({
  prefix: Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(column)}:`, 'utf8'),
  int: INT_COLUMNS.has(column),
}));
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEX = '0123456789abcdef';
/** Escapes JSON.stringify writes with a backslash and a letter, by byte. */
const SHORT_ESCAPES: Record<number, number> = {
  0x08: 0x62, // \b
  0x09: 0x74, // \t
  0x0a: 0x6e, // \n
  0x0c: 0x66, // \f
  0x0d: 0x72, // \r
  0x22: 0x22, // \"
  0x5c: 0x5c, // \\
};
/**
 * The output buffer: each input chunk's jsonl is pushed as a slice of it, and the next chunk's
 * is written after that slice, so a new buffer is needed every OUTPUT_BUFFER bytes rather than
 * once per input chunk (fresh memory costs page faults: a buffer per 64 KiB chunk, sized for
 * the worst case of 6 output bytes per input byte, was most of the conversion's time). 4 MiB
 * buffers, once freed, stayed with the allocator: a 1,000,000-row export peaked at 1.13-1.15x
 * the RSS of a 100,000-row one; with 1 MiB, 1.04-1.08x, and the export was faster too.
 */
const OUTPUT_BUFFER = 1024 * 1024;

export class CopyBinaryToJsonl extends Transform {
  private pending: Buffer | undefined;
  private headerRead = false;
  private ended = false;
  private out = Buffer.allocUnsafe(OUTPUT_BUFFER);
  /** Where the bytes not yet pushed begin in `out`; `at` is where they end. */
  private start = 0;
  private at = 0;
  /** Rows converted so far. */
  rows = 0;
  /** Bytes of jsonl written so far. */
  bytes = 0;

  /** With `countOnly`, nothing is pushed: only `rows` and `bytes` are counted. */
  constructor(private readonly countOnly = false) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      const input = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      const used = this.convert(input);
      this.pending = used < input.length ? input.subarray(used) : undefined;
      this.emitOutput();
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.pending || !this.ended) {
      done(new Error('binary COPY data ended in the middle of a row'));
      return;
    }
    this.emitOutput();
    done();
  }

  /** Converts the complete rows in `input`; returns the bytes consumed. */
  private convert(input: Buffer): number {
    let at = 0;
    if (!this.headerRead) {
      if (input.length < 19) return 0;
      if (!input.subarray(0, 11).equals(SIGNATURE)) throw new Error('not binary COPY data');
      at = 19 + input.readUInt32BE(15); // flags, then the header extension's length
      if (input.length < at) return 0;
      this.headerRead = true;
    }
    // Room for the worst case up front (every byte escaped as \u00XX, plus the keys), so the
    // row loop never checks: at most 6 bytes out per byte in, 16 per 4-byte length.
    this.reserve((input.length - at) * 6 + 64);
    const columns = FIELDS.length;
    while (at + 2 <= input.length) {
      const count = (input[at] << 8) | input[at + 1];
      if (count === 0xffff) {
        this.ended = true;
        return at + 2;
      }
      if (count !== columns)
        throw new Error(`binary COPY row has ${count} columns, not ${columns}`);
      // Written optimistically; a row cut off by the chunk's end is taken back.
      const rowStart = this.at;
      const end = this.writeRow(input, at + 2);
      if (end < 0) {
        this.at = rowStart;
        return at;
      }
      this.rows++;
      at = end;
    }
    return at;
  }

  // Byte loops rather than Buffer#copy, #write and #readInt32BE: the values are short, and a
  // native call per value costs more than copying its bytes in JavaScript.
  /** Writes one row; returns where it ends in `input`, or -1 when the row is not all there. */
  private writeRow(input: Buffer, start: number): number {
    const limit = input.length;
    let at = start;
    for (let f = 0; f < FIELDS.length; f++) {
      if (at + 4 > limit) return -1;
      const length =
        (input[at] << 24) | (input[at + 1] << 16) | (input[at + 2] << 8) | input[at + 3];
      at += 4;
      if (length > 0 && at + length > limit) return -1;
      const out = this.out;
      const prefix = FIELDS[f].prefix;
      let o = this.at;
      for (let i = 0; i < prefix.length; i++) out[o++] = prefix[i];
      this.at = o;
      if (length < 0) {
        out[o++] = 0x6e; // null
        out[o++] = 0x75;
        out[o++] = 0x6c;
        out[o++] = 0x6c;
        this.at = o;
      } else if (FIELDS[f].int) {
        this.writeInt(
          (input[at] << 24) | (input[at + 1] << 16) | (input[at + 2] << 8) | input[at + 3],
        );
        at += 4;
      } else {
        this.writeString(input, at, at + length);
        at += length;
      }
    }
    this.out[this.at++] = 0x7d; // }
    this.out[this.at++] = 0x0a; // newline
    return at;
  }

  private writeInt(value: number): void {
    const out = this.out;
    let o = this.at;
    if (value < 0) {
      if (value === -2147483648) {
        this.at += out.write('-2147483648', o, 'latin1');
        return;
      }
      out[o++] = 0x2d;
      value = -value;
    }
    const begin = o;
    do {
      out[o++] = 0x30 + (value % 10);
      value = Math.floor(value / 10);
    } while (value > 0);
    for (let i = begin, j = o - 1; i < j; i++, j--) {
      const digit = out[i];
      out[i] = out[j];
      out[j] = digit;
    }
    this.at = o;
  }

  private writeString(input: Buffer, start: number, end: number): void {
    const out = this.out;
    let o = this.at;
    out[o++] = 0x22;
    for (let i = start; i < end; i++) {
      const byte = input[i];
      if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
        out[o++] = byte;
        continue;
      }
      out[o++] = 0x5c;
      const short = SHORT_ESCAPES[byte];
      if (short !== undefined) {
        out[o++] = short;
      } else {
        out[o++] = 0x75; // u00XX
        out[o++] = 0x30;
        out[o++] = 0x30;
        out[o++] = HEX.charCodeAt(byte >> 4);
        out[o++] = HEX.charCodeAt(byte & 15);
      }
    }
    out[o++] = 0x22;
    this.at = o;
  }

  /** Room for `size` more bytes in the output buffer. */
  private reserve(size: number): void {
    if (this.at + size <= this.out.length) return;
    this.emitOutput();
    // Pushed slices still hold the old buffer; counting only, it can be written over.
    if (!this.countOnly || size > this.out.length) {
      this.out = Buffer.allocUnsafe(Math.max(size, OUTPUT_BUFFER));
    }
    this.start = 0;
    this.at = 0;
  }

  private emitOutput(): void {
    if (this.at === this.start) return;
    this.bytes += this.at - this.start;
    if (!this.countOnly) this.push(this.out.subarray(this.start, this.at));
    this.start = this.at;
  }
}
