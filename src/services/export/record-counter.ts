/**
 * Counts the records of a csv or jsonl byte stream as it passes, chunk by chunk, so an export
 * streamed straight out of COPY can still report progress by rows. A record ends at a newline;
 * in csv, a newline inside a quoted cell (quotes toggle, and a doubled quote toggles twice) does
 * not end one. jsonl never holds a raw newline inside a line.
 */
export class RecordCounter {
  private inQuote = false;

  constructor(private readonly quoted: boolean) {}

  /**
   * Scans `chunk` from `start` until `limit` records ended or the chunk did. Returns how many
   * ended and the offset just after the last one counted (the chunk's length when fewer than
   * `limit` ended).
   */
  scan(chunk: Buffer, start: number, limit: number): { records: number; end: number } {
    let records = 0;
    let at = start;
    // The next quote at or after `at`: searched once, and again only once passed.
    let quote = this.quoted ? chunk.indexOf(34, at) : -1;
    while (records < limit) {
      if (this.inQuote) {
        if (quote < 0) return { records, end: chunk.length };
        this.inQuote = false;
        at = quote + 1;
        quote = chunk.indexOf(34, at);
        continue;
      }
      const newline = chunk.indexOf(10, at);
      if (quote >= 0 && (newline < 0 || quote < newline)) {
        this.inQuote = true;
        at = quote + 1;
        quote = chunk.indexOf(34, at);
        continue;
      }
      if (newline < 0) return { records, end: chunk.length };
      records++;
      at = newline + 1;
    }
    return { records, end: at };
  }
}
