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

/** A header block with the fields every entry of one archive shares, and the sum of its bytes. */
interface HeaderTemplate {
  seconds: number;
  type: string;
  block: Buffer;
  sum: number;
}

let lastTemplate: HeaderTemplate | undefined;

/** The fields shared by every header of an archive (all its entries have one mtime). */
function headerTemplate(mtime: Date, type: '0' | 'x'): HeaderTemplate {
  const seconds = Math.floor(mtime.getTime() / 1000);
  if (lastTemplate?.seconds === seconds && lastTemplate.type === type) return lastTemplate;
  const block = Buffer.alloc(TAR_BLOCK);
  octal(block, 100, 8, 0o644); // mode
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 136, 12, seconds);
  block.write('        ', 148, 8, 'ascii'); // checksum field counts as spaces while summing
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'ascii');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i];
  lastTemplate = { seconds, type, block, sum };
  return lastTemplate;
}

/**
 * Writes a ustar header block into `target` at `offset` (no allocation: archives of many
 * small files write headers straight into their output buffer). The name must fit ustar
 * (see needsPax). The shared fields come from a template, so a header costs its name, size and
 * checksum: an export of 50,000 small files writes 50,000 of them.
 */
export function writeUstarHeader(
  target: Buffer,
  offset: number,
  name: string,
  size: number,
  mtime: Date,
  type: '0' | 'x' = '0',
): void {
  const template = headerTemplate(mtime, type);
  target.set(template.block, offset);
  let sum = template.sum;
  const nameBytes = target.write(name, offset, 100, 'utf8');
  for (let i = offset; i < offset + nameBytes; i++) sum += target[i];
  // Size: 11 octal digits and a NUL, as octal() writes them.
  let rest = size;
  for (let i = offset + 134; i >= offset + 124; i--) {
    const digit = 48 + (rest % 8);
    target[i] = digit;
    sum += digit;
    rest = Math.floor(rest / 8);
  }
  // Checksum: 6 octal digits, a NUL and a space.
  for (let i = offset + 153; i >= offset + 148; i--) {
    target[i] = 48 + (sum % 8);
    sum = Math.floor(sum / 8);
  }
  target[offset + 154] = 0;
  target[offset + 155] = 32;
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
