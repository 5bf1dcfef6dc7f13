import { CSV_FORMULA_TRIGGERS } from './manifest-sql';
import type { CopyRowEncoder } from './copy-out-rows';

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
  // Where each trigger byte occurs next in the buffer being read, searched natively once per
  // occurrence (a byte search is a memchr); a row before all of them, nearly every row, is
  // copied whole natively. Going through every byte in JavaScript instead cost about 320 ms of
  // client CPU per 1,000,000 rows, half a core beside the server's COPY.
  const triggers = Uint8Array.from(CSV_FORMULA_TRIGGERS, (c) => c.charCodeAt(0));
  const next = new Int32Array(triggers.length);
  let searched: Buffer | undefined;
  /** The first trigger occurrence at or after `from`, updating `next`; -1 when none. */
  const firstTrigger = (input: Buffer, from: number): number => {
    let first = -1;
    for (let t = 0; t < triggers.length; t++) {
      if (next[t] >= 0 && next[t] < from) next[t] = input.indexOf(triggers[t], from);
      if (next[t] >= 0 && (first < 0 || next[t] < first)) first = next[t];
    }
    return first;
  };
  return {
    // At most one `'` per `,"`: fewer than half the bytes.
    maxOutput: (bytes) => bytes + (bytes >> 1) + 1,
    encode(input, start, end, out, at) {
      if (searched !== input) {
        searched = input;
        for (let t = 0; t < triggers.length; t++) next[t] = input.indexOf(triggers[t], start);
      }
      let o = at;
      let from = start;
      for (let k = firstTrigger(input, start); k >= 0 && k < end; k = firstTrigger(input, k + 1)) {
        // A trigger that starts a text cell: `,"` before it.
        if (k - 2 < start || input[k - 1] !== QUOTE || input[k - 2] !== COMMA) continue;
        o += input.copy(out, o, from, k);
        out[o++] = APOSTROPHE;
        from = k;
      }
      return o + input.copy(out, o, from, end);
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
