/**
 * The bytes of a POSIX tar archive (ustar headers, with a PAX extended header for names that do
 * not fit ustar's 100 ASCII bytes). Written by hand rather than through a tar library: an
 * export of many small images spends its time per entry, and a header is 512 bytes of simple
 * fields. https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */
export const TAR_BLOCK = 512;

/** Largest size a ustar header holds (11 octal digits); larger goes into a PAX record. */
const USTAR_MAX_SIZE = 0o77777777777;

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  block[offset + width - 1] = 0;
}

function ustarHeader(name: string, size: number, mtime: Date, type: '0' | 'x'): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  writeUstarHeader(block, 0, name, size, mtime, type);
  return block;
}

/**
 * Writes a ustar header block into `target` at `offset` (no allocation: archives of many
 * small files write headers straight into their output buffer). The name must fit ustar
 * (see needsPax).
 */
export function writeUstarHeader(
  target: Buffer,
  offset: number,
  name: string,
  size: number,
  mtime: Date,
  type: '0' | 'x' = '0',
): void {
  const block =
    offset === 0 && target.length === TAR_BLOCK
      ? target
      : target.subarray(offset, offset + TAR_BLOCK);
  block.fill(0);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, 0o644); // mode
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.floor(mtime.getTime() / 1000));
  block.write('        ', 148, 8, 'ascii'); // checksum field counts as spaces while summing
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'ascii');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i];
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
}

/** Whether a file needs a PAX header: a name over 100 bytes or not ASCII, or over 8 GiB. */
export function needsPax(name: string, size: number): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 100 || !/^[\x01-\x7f]*$/.test(name) || size > USTAR_MAX_SIZE;
}

/** One PAX record: "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest);
  let length = restBytes + String(restBytes).length;
  if (String(length).length + restBytes !== length) length = restBytes + String(length).length;
  return `${length}${rest}`;
}

/** Zeros that pad `size` bytes of content to a whole block. */
export function tarPadding(size: number): Buffer {
  const remainder = size % TAR_BLOCK;
  return Buffer.alloc(remainder === 0 ? 0 : TAR_BLOCK - remainder);
}

/**
 * The header block(s) of a regular file of `size` bytes: one ustar block, preceded by a PAX
 * header when the name is longer than 100 bytes or not ASCII, or the size exceeds 8 GiB.
 */
export function tarFileHeader(name: string, size: number, mtime: Date): Buffer {
  const records: string[] = [];
  // eslint-disable-next-line no-control-regex
  if (name.length > 100 || !/^[\x01-\x7f]*$/.test(name)) records.push(paxRecord('path', name));
  if (size > USTAR_MAX_SIZE) records.push(paxRecord('size', String(size)));
  const header = ustarHeader(
    records.length ? name.replace(/[^\x20-\x7e]/g, '_').slice(0, 100) : name,
    size > USTAR_MAX_SIZE ? 0 : size,
    mtime,
    '0',
  );
  if (records.length === 0) return header;
  const pax = Buffer.from(records.join(''), 'utf8');
  return Buffer.concat([
    ustarHeader('PaxHeader', pax.length, mtime, 'x'),
    pax,
    tarPadding(pax.length),
    header,
  ]);
}

/** Bytes of `tarFileHeader(name, size)` for any size under 8 GiB: the room its header takes. */
export function tarHeaderBytes(name: string): number {
  return needsPax(name, 0) ? tarFileHeader(name, 0, new Date(0)).length : TAR_BLOCK;
}

/** The end of an archive: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * TAR_BLOCK);
}
