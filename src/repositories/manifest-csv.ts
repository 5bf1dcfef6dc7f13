import { CSV_FORMULA_TRIGGERS } from './manifest-sql';
import type { CopyRowEncoder } from './copy-out-rows';

const TRIGGER = new Uint8Array(256);
for (const c of CSV_FORMULA_TRIGGERS) TRIGGER[c.charCodeAt(0)] = 1;
const COMMA = 0x2c;
const QUOTE = 0x22;
const APOSTROPHE = 0x27;
const NEWLINE = 0x0a;
const EMPTY_QUOTED = Buffer.from('""');

/**
 * The rows of csv COPY as they are, or (`neutraliseFormulas`) with neutraliseCsvFormula
 * applied to the text cells COPY wrote with FORCE_QUOTE: a `'` in front of each text cell that
 * starts with a formula trigger, as the pure function does, without the server evaluating an
 * expression per cell (that halved COPY's speed).
 *
 * Why a byte test is exact here: every text cell is quoted and follows a comma (the first
 * column is an integer), so a text cell starts with `,"`; inside a quoted cell a quote is
 * doubled, so a `,"` inside data is always followed by a second `"`, never by a trigger. Hence
 * `,"` followed by a trigger byte occurs exactly where a text cell starts with a trigger. Each
 * row is whole (one COPY message), so the test never looks past its end.
 */
export function csvRowEncoder(neutraliseFormulas: boolean): CopyRowEncoder {
  if (!neutraliseFormulas) return emptyStringsAsEmptyCells();
  return {
    // At most one `'` per `,"`: fewer than half the bytes.
    maxOutput: (bytes) => bytes + (bytes >> 1) + 1,
    encode(input, start, end, out, at) {
      let o = at;
      let previous = 0;
      for (let i = start; i < end; i++) {
        const byte = input[i];
        out[o++] = byte;
        if (byte === QUOTE && previous === COMMA && i + 1 < end && TRIGGER[input[i + 1]]) {
          out[o++] = APOSTROPHE;
        }
        previous = byte;
      }
      return o;
    },
    finish: () => undefined,
  };
}

/**
 * The rows of csv COPY without FORCE_QUOTE, an empty string written as an empty cell like NULL
 * (csv-stringify's way) where COPY writes `""`: the client drops those two quotes rather than
 * the server evaluating NULLIF per text cell (that cost the export a tenth of its speed on
 * PostgreSQL 15). A row without `""` anywhere, nearly every one, is copied whole natively;
 * where to look for the next `""` is searched once per occurrence, not once per row.
 */
function emptyStringsAsEmptyCells(): CopyRowEncoder {
  let searched: Buffer | undefined;
  let nextPair = -1;
  return {
    maxOutput: (bytes) => bytes,
    encode(input, start, end, out, at) {
      if (searched !== input || (nextPair >= 0 && nextPair < start)) {
        searched = input;
        nextPair = input.indexOf(EMPTY_QUOTED, start);
      }
      if (nextPair < 0 || nextPair >= end) return at + input.copy(out, at, start, end);
      return copyDroppingEmptyQuoted(input, start, end, out, at);
    },
    finish: () => undefined,
  };
}

/**
 * Copies one csv row cell by cell, leaving out each cell that is exactly `""`. A cell is
 * quoted (from a quote to the quote that is not doubled) or not (up to the next comma or the
 * newline); only a cell start is looked at for `""`, so a doubled quote inside a cell stays.
 */
function copyDroppingEmptyQuoted(
  input: Buffer,
  start: number,
  end: number,
  out: Buffer,
  at: number,
): number {
  let i = start;
  let o = at;
  while (i < end) {
    if (input[i] === QUOTE) {
      const next = input[i + 1];
      const after = input[i + 2];
      if (next === QUOTE && i + 2 < end && (after === COMMA || after === NEWLINE)) {
        i += 2; // the empty string: an empty cell
      } else {
        out[o++] = input[i++];
        while (i < end) {
          const byte = input[i++];
          out[o++] = byte;
          if (byte !== QUOTE) continue;
          if (i >= end || input[i] !== QUOTE) break; // the closing quote
          out[o++] = input[i++]; // a doubled quote
        }
      }
    } else {
      while (i < end && input[i] !== COMMA && input[i] !== NEWLINE) out[o++] = input[i++];
    }
    if (i < end) out[o++] = input[i++]; // the comma or the newline
  }
  return o;
}
