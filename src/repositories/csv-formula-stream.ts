import { Transform, type TransformCallback } from 'node:stream';
import { CSV_FORMULA_TRIGGERS } from './manifest-sql';

const TRIGGER = new Uint8Array(256);
for (const c of CSV_FORMULA_TRIGGERS) TRIGGER[c.charCodeAt(0)] = 1;
const COMMA_QUOTE = Buffer.from(',"');
const APOSTROPHE = 0x27;

/**
 * neutraliseCsvFormula applied to csv COPY wrote with FORCE_QUOTE on every text column: puts
 * a `'` in front of each text cell that starts with a formula trigger, as the pure function
 * does, without the server evaluating an expression per cell.
 *
 * Why a byte search is exact here: every text cell is quoted and follows a comma (the first
 * column is an integer), so a text cell starts with `,"`; inside a quoted cell a quote is
 * doubled, so a `,"` inside data is always followed by a second `"`, never by a trigger. Hence
 * `,"` followed by a trigger byte occurs exactly where a text cell starts with a trigger.
 */
export class CsvFormulaNeutraliser extends Transform {
  /** Bytes held back from the previous chunk: a trailing `,` or `,"` whose match may go on. */
  private carry: Buffer | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const input = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    // Hold back an incomplete `,"<byte>` at the end.
    let end = input.length;
    if (end >= 1 && input[end - 1] === 0x2c) end -= 1;
    else if (end >= 2 && input[end - 2] === 0x2c && input[end - 1] === 0x22) end -= 2;
    if (end < input.length) this.carry = input.subarray(end);
    const parts: Buffer[] = [];
    let from = 0;
    let at = input.indexOf(COMMA_QUOTE, 0);
    while (at >= 0 && at + 2 < end) {
      if (TRIGGER[input[at + 2]]) {
        parts.push(input.subarray(from, at + 2), APOSTROPHE_BYTE);
        from = at + 2;
      }
      at = input.indexOf(COMMA_QUOTE, at + 2);
    }
    if (parts.length === 0) {
      done(null, end === input.length ? input : input.subarray(0, end));
      return;
    }
    parts.push(input.subarray(from, end));
    done(null, Buffer.concat(parts));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.carry);
  }
}

const APOSTROPHE_BYTE = Buffer.from([APOSTROPHE]);
