import { CSV_FORMULA_TRIGGERS } from './manifest-sql';
import type { CopyRowEncoder } from './copy-out-rows';

const TRIGGER = new Uint8Array(256);
for (const c of CSV_FORMULA_TRIGGERS) TRIGGER[c.charCodeAt(0)] = 1;
const COMMA = 0x2c;
const QUOTE = 0x22;
const APOSTROPHE = 0x27;

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
  if (!neutraliseFormulas) {
    return {
      maxOutput: (bytes) => bytes,
      encode: (input, start, end, out, at) => at + input.copy(out, at, start, end),
      finish: () => undefined,
    };
  }
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
