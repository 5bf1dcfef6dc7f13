/**
 * The bytes of a zip archive, written front to back without seeking (local headers, data, one
 * central directory at the end), with ZIP64 records where counts or offsets outgrow 32 bits.
 * Written by hand rather than through a zip library: an export of many small images spends its
 * time per entry, and images are stored as they are (already compressed), so an entry is two
 * small headers and a CRC (zlib.crc32, native).
 * https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT
 */

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END = 0x06054b50;
const MAX32 = 0xffffffff;
const MAX16 = 0xffff;

/** General purpose flags: bit 3 sizes and CRC in a data descriptor; bit 11 UTF-8 names. */
const FLAG_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const VERSION_ZIP64 = 45;
const VERSION_DEFAULT = 20;
/** Made by Unix (3) with version 4.5, so readers apply the permissions. */
const MADE_BY = (3 << 8) | VERSION_ZIP64;
const FILE_MODE = 0o100644;

export type ZipMethod = 'store' | 'deflate';

interface CentralEntry {
  name: string;
  /** Bytes of the name in UTF-8. */
  nameLength: number;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
}

/** MS-DOS date and time, as zip stores them (local time, 2-second steps). */
function dosDateTime(date: Date): { time: number; date: number } {
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | Math.floor(date.getSeconds() / 2),
    date: ((date.getFullYear() - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

/** What a local header says besides the entry's name, flags and method. */
interface LocalHeaderFields {
  version: number;
  crc: number;
  compressedSize: number;
  size: number;
  extra: Buffer;
}

const CENTRAL_CHUNK = 1 << 20;
const NO_EXTRA = Buffer.alloc(0);

/**
 * Builds a zip archive's bytes entry by entry; the caller writes what each method returns, in
 * order. The central directory, which zip puts at the end, is kept as packed bytes (46 bytes
 * plus the name per entry, in 1 MiB chunks) until `finish()` returns it.
 */
export class ZipWriter {
  private offset = 0;
  private count = 0;
  private readonly central: Buffer[] = [];
  private centralFill = CENTRAL_CHUNK;
  private centralSize = 0;
  private readonly time: number;
  private readonly date: number;
  private open?: { entry: CentralEntry; headerBytes: number };

  constructor(mtime: Date) {
    ({ time: this.time, date: this.date } = dosDateTime(mtime));
  }

  /** Bytes of `storedFile`'s header for this name (to leave room for it). */
  storedHeaderSize(name: string): number {
    return 30 + Buffer.byteLength(name, 'utf8');
  }

  /** Header of an entry whose bytes are known: stored, with its CRC and size up front. */
  storedFile(name: string, crc: number, size: number): Buffer {
    const header = Buffer.alloc(this.storedHeaderSize(name));
    this.writeStoredFile(header, 0, name, crc, size);
    return header;
  }

  /**
   * `storedFile`'s header written into `target` at `offset` (storedHeaderSize(name) bytes of
   * room), and its central directory entry packed, with no buffer of its own: an export of
   * 50,000 small images writes 50,000 of them.
   */
  writeStoredFile(target: Buffer, offset: number, name: string, crc: number, size: number): void {
    const entry = this.entry(name, 0, FLAG_UTF8, crc, size, size);
    this.writeLocalHeader(target, offset, entry, {
      version: VERSION_DEFAULT,
      crc,
      compressedSize: size,
      size,
      extra: NO_EXTRA,
    });
    this.offset += 30 + entry.nameLength + size;
    this.addCentral(entry);
  }

  /**
   * Header of an entry whose size and CRC are known only at its end (a streamed manifest, a large
   * image): both go into a ZIP64 data descriptor that `endStreamed` returns.
   */
  beginStreamed(name: string, method: ZipMethod): Buffer {
    if (this.open) throw new Error(`zip entry ${this.open.entry.name} is still open`);
    const entry = this.entry(
      name,
      method === 'deflate' ? 8 : 0,
      FLAG_UTF8 | FLAG_DESCRIPTOR,
      0,
      0,
      0,
    );
    const extra = Buffer.alloc(20); // ZIP64 extra field: sizes to come in the descriptor
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(16, 2);
    const fields = { version: VERSION_ZIP64, crc: 0, compressedSize: MAX32, size: MAX32, extra };
    const header = Buffer.alloc(30 + entry.nameLength + extra.length);
    this.writeLocalHeader(header, 0, entry, fields);
    this.offset += header.length;
    this.open = { entry, headerBytes: header.length };
    return header;
  }

  /** The data descriptor that ends the open streamed entry. */
  endStreamed(crc: number, compressedSize: number, size: number): Buffer {
    if (!this.open) throw new Error('no zip entry is open');
    const { entry } = this.open;
    this.open = undefined;
    Object.assign(entry, { crc, compressedSize, size });
    const descriptor = Buffer.alloc(24);
    descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
    descriptor.writeUInt32LE(crc, 4);
    descriptor.writeBigUInt64LE(BigInt(compressedSize), 8);
    descriptor.writeBigUInt64LE(BigInt(size), 16);
    this.offset += compressedSize + descriptor.length;
    this.addCentral(entry);
    return descriptor;
  }

  /** The central directory and end records: the archive's last bytes. */
  finish(): Buffer {
    if (this.open) throw new Error(`zip entry ${this.open.entry.name} is still open`);
    const start = this.offset;
    const size = this.centralSize;
    const parts = this.central.map((chunk, i) =>
      i === this.central.length - 1 ? chunk.subarray(0, this.centralFill) : chunk,
    );
    this.central.length = 0;
    const end = this.offset + size;
    const count = this.count;
    const zip64 = count >= MAX16 || start >= MAX32 || size >= MAX32;
    if (zip64) {
      const record = Buffer.alloc(56);
      record.writeUInt32LE(ZIP64_END, 0);
      record.writeBigUInt64LE(44n, 4);
      record.writeUInt16LE(MADE_BY, 12);
      record.writeUInt16LE(VERSION_ZIP64, 14);
      record.writeBigUInt64LE(BigInt(count), 24);
      record.writeBigUInt64LE(BigInt(count), 32);
      record.writeBigUInt64LE(BigInt(size), 40);
      record.writeBigUInt64LE(BigInt(start), 48);
      const locator = Buffer.alloc(20);
      locator.writeUInt32LE(ZIP64_LOCATOR, 0);
      locator.writeBigUInt64LE(BigInt(end), 8);
      locator.writeUInt32LE(1, 16);
      parts.push(record, locator);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(END, 0);
    eocd.writeUInt16LE(Math.min(count, MAX16), 8);
    eocd.writeUInt16LE(Math.min(count, MAX16), 10);
    eocd.writeUInt32LE(Math.min(size, MAX32), 12);
    eocd.writeUInt32LE(Math.min(start, MAX32), 16);
    parts.push(eocd);
    const bytes = Buffer.concat(parts);
    this.offset += bytes.length;
    return bytes;
  }

  private entry(
    name: string,
    method: number,
    flags: number,
    crc: number,
    compressedSize: number,
    size: number,
  ): CentralEntry {
    return {
      name,
      nameLength: Buffer.byteLength(name, 'utf8'),
      method,
      flags,
      crc,
      compressedSize,
      size,
      offset: this.offset,
    };
  }

  /** Packs the entry's central directory header, straight into the current chunk if it fits. */
  private addCentral(entry: CentralEntry): void {
    const extra = zip64Extra(entry);
    const length = 46 + entry.nameLength + extra.length;
    if (this.centralFill + length <= CENTRAL_CHUNK) {
      this.writeCentralHeader(
        this.central[this.central.length - 1],
        this.centralFill,
        entry,
        extra,
      );
      this.centralFill += length;
    } else {
      const header = Buffer.alloc(length);
      this.writeCentralHeader(header, 0, entry, extra);
      let at = 0;
      while (at < header.length) {
        if (this.centralFill === CENTRAL_CHUNK) {
          this.central.push(Buffer.allocUnsafe(CENTRAL_CHUNK));
          this.centralFill = 0;
        }
        const copied = header.copy(this.central[this.central.length - 1], this.centralFill, at);
        this.centralFill += copied;
        at += copied;
      }
    }
    this.centralSize += length;
    this.count++;
  }

  /** A local file header at `at`: 30 bytes, the name, then `extra`. */
  private writeLocalHeader(
    target: Buffer,
    at: number,
    entry: CentralEntry,
    { version, crc, compressedSize, size, extra }: LocalHeaderFields,
  ): void {
    target.writeUInt32LE(LOCAL_HEADER, at);
    target.writeUInt16LE(version, at + 4);
    target.writeUInt16LE(entry.flags, at + 6);
    target.writeUInt16LE(entry.method, at + 8);
    target.writeUInt16LE(this.time, at + 10);
    target.writeUInt16LE(this.date, at + 12);
    target.writeUInt32LE(crc, at + 14);
    target.writeUInt32LE(compressedSize, at + 18);
    target.writeUInt32LE(size, at + 22);
    target.writeUInt16LE(entry.nameLength, at + 26);
    target.writeUInt16LE(extra.length, at + 28);
    target.write(entry.name, at + 30, entry.nameLength, 'utf8');
    extra.copy(target, at + 30 + entry.nameLength);
  }

  private writeCentralHeader(target: Buffer, at: number, entry: CentralEntry, extra: Buffer): void {
    target.fill(0, at, at + 46);
    target.writeUInt32LE(CENTRAL_HEADER, at);
    target.writeUInt16LE(MADE_BY, at + 4);
    target.writeUInt16LE(
      extra.length || entry.flags & FLAG_DESCRIPTOR ? VERSION_ZIP64 : VERSION_DEFAULT,
      at + 6,
    );
    target.writeUInt16LE(entry.flags, at + 8);
    target.writeUInt16LE(entry.method, at + 10);
    target.writeUInt16LE(this.time, at + 12);
    target.writeUInt16LE(this.date, at + 14);
    target.writeUInt32LE(entry.crc, at + 16);
    target.writeUInt32LE(Math.min(entry.compressedSize, MAX32), at + 20);
    target.writeUInt32LE(Math.min(entry.size, MAX32), at + 24);
    target.writeUInt16LE(entry.nameLength, at + 28);
    target.writeUInt16LE(extra.length, at + 30);
    target.writeUInt32LE((FILE_MODE << 16) >>> 0, at + 38);
    target.writeUInt32LE(Math.min(entry.offset, MAX32), at + 42);
    target.write(entry.name, at + 46, entry.nameLength, 'utf8');
    extra.copy(target, at + 46 + entry.nameLength);
  }
}

/**
 * A central header's ZIP64 extra field: only the values whose 32-bit slot says 0xFFFFFFFF, in
 * this order (size, compressed size, offset); none for the common small entry.
 */
function zip64Extra(entry: CentralEntry): Buffer {
  const values = [entry.size, entry.compressedSize, entry.offset];
  if (values.every((value) => value < MAX32)) return NO_EXTRA;
  const wide = values.filter((value) => value >= MAX32);
  const extra = Buffer.alloc(4 + 8 * wide.length);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8 * wide.length, 2);
  wide.forEach((value, i) => extra.writeBigUInt64LE(BigInt(value), 4 + 8 * i));
  return extra;
}
