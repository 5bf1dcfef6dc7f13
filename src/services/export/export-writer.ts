import { once } from 'node:events';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { crc32, createDeflateRaw } from 'node:zlib';
import type { ValidationRules } from '../../entities/validation-job.entity';
import type { ExportFormat } from '../../entities/value-sets';
import type { ManifestChunk } from '../../repositories/copy-out-rows';
import type {
  ExportFileRow,
  ExportSnapshot,
  ImageRepository,
} from '../../repositories/image.repository';
import type {
  ArchiveLayout,
  ImageFile,
  ImageReader,
  ImageStorage,
  LaidOutFiles,
} from '../../storage/image-storage';
import type { ExportDestination, StoredExport } from './export-destination';
import { ARCHIVE_MANIFEST, archiveEntryName, exportFileName } from './manifest';
import {
  needsPax,
  TAR_BLOCK,
  tarEnd,
  tarFileHeader,
  tarHeaderBytes,
  tarPadding,
  writeUstarHeader,
} from './tar-format';
import { ZipWriter } from './zip-format';

/** What an export writes: which images, in which format. */
export interface ExportToWrite {
  id: number;
  crawlJobId: number;
  format: ExportFormat;
  /** Only the images passing these rules (an `onlyValid` export). */
  rules?: ValidationRules;
}

/** Rows written so far of how many. */
export interface ExportCounts {
  exported: number;
  total: number;
}

/**
 * Called with exact counts at multiples of `progressEvery` rows (at most one report per
 * `progressIntervalMs`) and once at the end. A report runs while the next rows stream; the
 * writer waits for it before the next one, so a listener may do I/O, and throwing from it stops
 * the export (noticed by the next report at the latest).
 */
export type ExportCountsListener = (counts: ExportCounts) => void | Promise<void>;

export interface ExportWriterOptions {
  /** Reads the image files of zip and tar exports. */
  storage?: ImageStorage;
  /** Rows between progress reports. Default 1000. */
  progressEvery?: number;
  /**
   * Least time between two progress reports, in ms (default 250): COPY streams thousands of
   * rows per millisecond, and a report per 1,000 rows would make progress the bottleneck.
   * 0 reports at every multiple of progressEvery.
   */
  progressIntervalMs?: number;
  /** OWASP formula protection in csv (see ExportJobServiceOptions). Default true. */
  csvFormulaProtection?: boolean;
}

export interface WrittenExport extends StoredExport {
  exported: number;
}

/** Output of archives is handed on in chunks of this size. */
const CHUNK = 1 << 20;
/** Longest stretch of synchronous work (local file reads) before yielding to the event loop. */
const MAX_BUSY_MS = 10;
/**
 * The largest tar manifest held in memory to learn its size in one pass (about 20,000 images
 * at some 200 bytes a line: four of the jsonl converter's 1 MiB buffers); beyond it, the
 * manifest is read twice. Holding up to 16 MiB grew a 50,000-file tar export's peak RSS to
 * 1.42x of a 5,000-file one (328.8 vs 232.3 MB); with 4 MiB it measured 1.00x
 * (bench/archive-export.ts).
 */
const MANIFEST_HELD = 4 << 20;

/**
 * The export's data path, on its own: streams one export's rows (and files) from ONE database
 * snapshot into a destination, and nothing else: claiming, heartbeats, stop detection and the
 * job's status belong to the caller, which learns of progress through `onProgress` and stops a
 * run with `signal` (or by throwing from `onProgress`).
 *
 * - csv and jsonl come straight out of PostgreSQL's COPY (jsonl from binary COPY), counted by
 *   record as they pass; no row becomes a JavaScript object.
 * - zip and tar put manifest.jsonl first, then every image's file, written by this module's own
 *   tar and zip encoders; memory stays flat (tar), or grows by the zip central directory
 *   (about 80 bytes per file).
 * - A zip/tar export of an image without a readable file fails, naming the image: a dataset
 *   silently missing files is worse than no dataset. Nothing is left at the destination.
 */
export class ExportWriter {
  constructor(
    private readonly images: ImageRepository,
    private readonly options: ExportWriterOptions = {},
  ) {}

  async write(
    job: ExportToWrite,
    destination: ExportDestination,
    expiresAt: Date,
    onProgress?: ExportCountsListener,
    signal?: AbortSignal,
  ): Promise<WrittenExport> {
    signal?.throwIfAborted();
    const every = this.options.progressEvery ?? 1000;
    if (!Number.isSafeInteger(every) || every < 1) {
      throw new TypeError(`progressEvery must be a whole number of rows, at least 1; got ${every}`);
    }
    const upload = await destination.begin(exportFileName(job), job.format);
    try {
      const exported = await this.images.readExport(job.crawlJobId, job.rules, async (snapshot) => {
        // Counted while the rows stream; the first report and the final check wait for it.
        const counting = snapshot.count();
        counting.catch(() => undefined); // awaited below
        const reporter = new Reporter(
          async (exported: number) =>
            onProgress?.({ exported, total: Math.max(await counting, exported) }),
          this.options.progressIntervalMs ?? 250,
        );
        let counted: () => number;
        if (job.format === 'csv' || job.format === 'jsonl') {
          const counter = new ProgressCounter(every, reporter);
          counted = () => counter.rows;
          const rows =
            job.format === 'csv'
              ? snapshot.csvChunks({
                  formulaProtection: this.options.csvFormulaProtection !== false,
                })
              : snapshot.jsonlChunks();
          await pipeline(rows, counter, upload.stream, { signal });
        } else {
          const files = { rows: 0 };
          counted = () => files.rows;
          const reader = this.reader();
          try {
            const pieces = archive(job.format, snapshot, reader, every, reporter, files, {
              zeroCopy: upload.releasesChunks === true,
            });
            await writeArchive(pieces, upload.stream, signal);
          } finally {
            reader.close?.();
          }
        }
        const total = await counting;
        if (counted() !== total) {
          throw new Error(`wrote ${counted()} of the export's ${total} rows`);
        }
        return total;
      });
      return { ...(await upload.commit(expiresAt)), exported };
    } catch (error) {
      await upload.abort().catch(() => undefined);
      throw error;
    }
  }

  private reader(): ImageReader {
    const storage = this.options.storage;
    if (!storage) throw new Error('zip and tar exports need an ImageStorage to read files from');
    return storage.reader?.() ?? readerThroughOpen(storage);
  }
}

/**
 * Progress reports in order, one in flight at a time, without holding the data up: a report
 * runs while the next rows stream, and the writer waits for it only at the next report (so a
 * stop is noticed at most one interval late) and at the end. A report's error surfaces there.
 */
class Reporter {
  private pending: Promise<void> = Promise.resolve();
  private last = -Infinity;
  /** The count of the last report made (-1: none yet). */
  reportedRows = -1;

  constructor(
    private readonly report: (rows: number) => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** A report at this count, unless the last one was less than the interval ago. */
  async due(rows: number): Promise<void> {
    if (performance.now() - this.last < this.intervalMs) return;
    await this.at(rows);
  }

  /** A report at this count. */
  async at(rows: number): Promise<void> {
    this.last = performance.now();
    this.reportedRows = rows;
    await this.pending;
    this.pending = this.report(rows);
    this.pending.catch(() => undefined); // surfaces at the next at() or settled()
  }

  settled(): Promise<void> {
    return this.pending;
  }
}

/**
 * Turns a manifest's ManifestChunks into its bytes, reporting progress every `every` rows: a
 * chunk is split at each `every`-th row's end, so a report's count is exact.
 */
class ProgressCounter extends Transform {
  /** Rows passed on. */
  rows = 0;
  private reported = 0;

  constructor(
    private readonly interval: number,
    private readonly reporter: Reporter,
  ) {
    super({ writableObjectMode: true });
  }

  override _transform(
    chunk: ManifestChunk,
    _encoding: BufferEncoding,
    done: TransformCallback,
  ): void {
    this.consume(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    const final =
      this.rows === this.reporter.reportedRows ? undefined : this.reporter.at(this.rows);
    Promise.resolve(final)
      .then(() => this.reporter.settled())
      .then(() => done(), done);
  }

  private async consume({ bytes, rowEnds }: ManifestChunk): Promise<void> {
    let from = 0;
    let row = 0;
    for (;;) {
      const next = row + this.reported + this.interval - this.rows;
      if (next > rowEnds.length) break;
      const end = rowEnds[next - 1];
      this.push(bytes.subarray(from, end));
      this.rows += next - row;
      row = next;
      from = end;
      this.reported = this.rows;
      await this.reporter.due(this.rows);
    }
    this.rows += rowEnds.length - row;
    if (from < bytes.length) this.push(from === 0 ? bytes : bytes.subarray(from));
  }
}

/**
 * The archive's output, gathered into chunks of about CHUNK bytes. Headers and small files
 * are written straight into the current chunk (`region`), so a file costs one copy from the
 * page cache and no allocation; large pieces are handed on as they are.
 */
class Output {
  private buffer = Buffer.allocUnsafe(CHUNK);
  private fill = 0;
  private ready: Buffer[] = [];
  private busySince = performance.now();

  add(bytes: Buffer): void {
    if (bytes.length > CHUNK / 4) {
      this.close();
      this.ready.push(bytes);
      return;
    }
    const { buffer, offset } = this.region(bytes.length);
    bytes.copy(buffer, offset);
  }

  /** Copies `bytes` into the chunks (never keeps a reference to them). */
  copy(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      if (this.fill === this.buffer.length) this.close();
      const copied = bytes.copy(this.buffer, this.fill, at);
      this.fill += copied;
      at += copied;
    }
  }

  /** `size` contiguous bytes to write into. */
  region(size: number): { buffer: Buffer; offset: number } {
    if (size > CHUNK) {
      this.close();
      const own = Buffer.allocUnsafe(size);
      this.ready.push(own);
      return { buffer: own, offset: 0 };
    }
    if (this.fill + size > this.buffer.length) this.close();
    const offset = this.fill;
    this.fill += size;
    return { buffer: this.buffer, offset };
  }

  /** Chunks complete so far (taken). */
  take(): Buffer[] {
    const ready = this.ready;
    this.ready = [];
    return ready;
  }

  /** Everything written so far, the current chunk included. */
  flush(): Buffer[] {
    this.close();
    return this.take();
  }

  /** Whether synchronous work has held the event loop long enough to let it run. */
  shouldYield(): boolean {
    const now = performance.now();
    if (now - this.busySince < MAX_BUSY_MS) return false;
    this.busySince = now;
    return true;
  }

  rest(): void {
    this.busySince = performance.now();
  }

  private close(): void {
    if (this.fill === 0) return;
    this.ready.push(this.buffer.subarray(0, this.fill));
    this.buffer = Buffer.allocUnsafe(CHUNK);
    this.fill = 0;
  }
}

/** An archive's bytes the writer must release once written (a reader's laid-out files). */
type ReleasedBytes = Pick<LaidOutFiles, 'bytes' | 'release'>;

/**
 * Writes an archive's pieces to the destination's stream, minding backpressure. A piece to be
 * released is released from its write callback: the stream is done with it then (the
 * destination said so with `releasesChunks`).
 */
async function writeArchive(
  pieces: AsyncGenerator<Buffer | ReleasedBytes>,
  stream: Writable,
  signal?: AbortSignal,
): Promise<void> {
  let failure: unknown;
  let fail!: (error: unknown) => void;
  /** The wait for the next piece, ended by a stop (see below). */
  let stopWaiting: ((error: unknown) => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = (error) => {
      failure ??= error;
      stopWaiting?.(failure);
      reject(failure);
    };
  });
  failed.catch(() => undefined); // raced below
  // The next piece, or the stop if it comes first: one may take long to come (the manifest's
  // first pass, a batch of files), and a stop must not wait for it. (One promise per piece, not
  // a race against `failed`, which would keep a reaction per piece until the end.)
  const nextPiece = () =>
    new Promise<IteratorResult<Buffer | ReleasedBytes>>((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      stopWaiting = reject;
      pieces.next().then(resolve, reject);
    }).finally(() => {
      stopWaiting = undefined;
    });
  const onError = (error: Error) => fail(error);
  const onClose = () => {
    if (!stream.writableFinished) fail(new Error('the export destination closed its stream early'));
  };
  const onAbort = () => fail(signal!.reason);
  stream.on('error', onError);
  stream.on('close', onClose);
  // An abort while the snapshot was being opened came before this listener: it counts too.
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const next = await nextPiece();
      if (next.done) break;
      const piece = next.value;
      const written = Buffer.isBuffer(piece)
        ? stream.write(piece)
        : stream.write(piece.bytes, () => piece.release());
      if (!written) await Promise.race([once(stream, 'drain'), failed]);
    }
    if (failure !== undefined) throw failure;
    stream.end();
    await Promise.race([finished(stream), failed]);
  } catch (error) {
    stream.destroy(error instanceof Error ? error : new Error(String(error)));
    // The pieces' own cleanup (the snapshot's cursor closed, the reader's slots given back) may
    // wait on what this stop ends (a COPY nobody reads, a write that never completes): it goes
    // on without holding the stop up. The caller then closes the reader and the snapshot.
    pieces.return(undefined).catch(() => undefined);
    throw error;
  } finally {
    stream.off('error', onError);
    stream.off('close', onClose);
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A zip or tar archive's bytes: manifest.jsonl from the snapshot, then each image's file read
 * through `reader` (up to its concurrency in flight, written in id order). With `zeroCopy`,
 * files the reader laid out go to the output as the reader's own bytes, released once written;
 * without, they are copied into the output's chunks and released at once.
 */
async function* archive(
  kind: 'zip' | 'tar',
  snapshot: ExportSnapshot,
  reader: ImageReader,
  every: number,
  reporter: Reporter,
  files: { rows: number },
  { zeroCopy }: { zeroCopy: boolean },
): AsyncGenerator<Buffer | ReleasedBytes> {
  const mtime = new Date();
  const zip = kind === 'zip' ? new ZipWriter(mtime) : undefined;
  const out = new Output();
  function* emit(bytes: Buffer): Generator<Buffer> {
    out.add(bytes);
    yield* out.take();
  }

  // The files, in id order: runs laid out by the reader where it can (LaidOutFiles, headers
  // written into the room left for them), others one by one. The first batch's rows are read,
  // and its files' reading started, before the manifest: the reader works while it streams.
  const layout: ArchiveLayout = {
    block: zip ? 1 : TAR_BLOCK,
    crc: zip !== undefined,
    headerBytes: (image) => {
      const name = archiveEntryName(image as ExportFileRow);
      return zip ? zip.storedHeaderSize(name) : tarHeaderBytes(name);
    },
  };
  const batches = snapshot.files();
  const startBatch = async () => {
    const read = await batches.next();
    if (read.done) return undefined;
    return { rows: read.value, pieces: readFiles(reader, read.value, layout) };
  };
  try {
    const first = await startBatch();

    // The manifest: tar needs its size before its bytes (the snapshot sums the lines in SQL);
    // zip deflates it as it streams and puts size and CRC after it.
    if (zip) {
      yield* emit(zip.beginStreamed(ARCHIVE_MANIFEST, 'deflate'));
      let crc = 0;
      let size = 0;
      let compressed = 0;
      const deflate = createDeflateRaw({ level: 6 });
      const feeding = pipeline(
        snapshot.jsonlChunks(),
        new Transform({
          writableObjectMode: true,
          transform({ bytes }: ManifestChunk, _encoding, done) {
            crc = crc32(bytes, crc);
            size += bytes.length;
            done(null, bytes);
          },
        }),
        deflate,
      );
      feeding.catch(() => undefined); // its error also ends the loop below; awaited after it
      for await (const chunk of deflate) {
        compressed += (chunk as Buffer).length;
        yield* emit(chunk as Buffer);
      }
      await feeding;
      yield* emit(zip.endStreamed(crc, compressed, size));
    } else {
      // A tar header holds its entry's size: the manifest is read once and held when it is at
      // most MANIFEST_HELD bytes (most crawls); a larger one is counted in that pass and
      // streamed in a second, so memory stays bounded.
      const held: Buffer[] = [];
      let size = 0;
      for await (const { bytes } of snapshot.jsonlChunks() as AsyncIterable<ManifestChunk>) {
        size += bytes.length;
        if (size <= MANIFEST_HELD) held.push(bytes);
        else held.length = 0;
      }
      yield* emit(tarFileHeader(ARCHIVE_MANIFEST, size, mtime));
      if (size <= MANIFEST_HELD) {
        for (const chunk of held.splice(0)) yield* emit(chunk);
      } else {
        let written = 0;
        for await (const { bytes } of snapshot.jsonlChunks() as AsyncIterable<ManifestChunk>) {
          written += bytes.length;
          yield* emit(bytes);
        }
        if (written !== size) {
          throw new Error(`the manifest has ${written} bytes, the first pass counted ${size}`);
        }
      }
      yield* emit(tarPadding(size));
    }

    /** Counts a written file; at each `every`-th, flushes the output and reports. */
    async function* fileWritten(): AsyncGenerator<Buffer> {
      files.rows++;
      if (files.rows % every === 0) {
        yield* out.flush();
        await reporter.due(files.rows);
        out.rest();
      } else if (out.shouldYield()) {
        await yieldToEventLoop();
      }
    }
    let batch = first;
    while (batch) {
      // The next batch's rows, and its files' reading, start while this one is written.
      const following = startBatch();
      following.catch(() => undefined); // awaited below
      const { rows, pieces } = batch;
      let next = 0;
      for await (const piece of pieces) {
        if ('files' in piece) {
          for (const { offset, size, crc } of piece.files) {
            writeHeader(piece.bytes, offset, zip, archiveEntryName(rows[next++]), size, crc, mtime);
          }
          if (zeroCopy) {
            yield* out.flush(); // what came before, then the run itself
            yield piece;
          } else {
            out.copy(piece.bytes);
            piece.release();
            yield* out.take();
          }
          // Reports at the multiples of `every` the run crossed: those files are written.
          for (let i = 0; i < piece.files.length; i++) yield* fileWritten();
          continue;
        }
        const image = rows[next++];
        const file = piece;
        const name = archiveEntryName(image);
        if ('copyTo' in file) {
          writeSmallFile(out, zip, name, file, mtime);
          yield* out.take();
        } else if ('bytes' in file) {
          if (zip) yield* emit(zip.storedFile(name, crc32(file.bytes), file.size));
          else yield* emit(tarFileHeader(name, file.size, mtime));
          yield* emit(file.bytes);
          if (!zip) yield* emit(tarPadding(file.size));
        } else {
          yield* emit(
            zip ? zip.beginStreamed(name, 'store') : tarFileHeader(name, file.size, mtime),
          );
          let crc = 0;
          let size = 0;
          for await (const chunk of file.stream) {
            crc = crc32(chunk as Buffer, crc);
            size += (chunk as Buffer).length;
            yield* emit(chunk as Buffer);
          }
          if (size !== file.size) {
            throw new Error(`image ${image.id}: its file changed size while being read`);
          }
          yield* emit(zip ? zip.endStreamed(crc, size, size) : tarPadding(file.size));
        }
        yield* fileWritten();
      }
      batch = await following;
    }
  } finally {
    await batches.return(undefined);
  }
  yield* emit(zip ? zip.finish() : tarEnd());
  yield* out.flush();
  if (reporter.reportedRows !== files.rows) await reporter.at(files.rows);
  await reporter.settled();
}

/**
 * The files of one batch, in order: laid out by the reader when it can, else read one by one,
 * up to the reader's concurrency ahead of the one being written.
 */
function readFiles(
  reader: ImageReader,
  batch: ExportFileRow[],
  layout: ArchiveLayout,
): AsyncIterable<LaidOutFiles | ImageFile> {
  // Called now, not when first iterated: a reader may start reading at once.
  return reader.readLaidOut ? reader.readLaidOut(batch, layout) : readOneByOne(reader, batch);
}

/** Each file through `read`, up to the reader's concurrency ahead of the one being written. */
async function* readOneByOne(
  reader: ImageReader,
  batch: ExportFileRow[],
): AsyncGenerator<ImageFile> {
  const ahead: Array<ImageFile | Promise<ImageFile>> = [];
  const readAhead = (image: ExportFileRow) => {
    let file: ImageFile | Promise<ImageFile>;
    try {
      file = reader.read(image);
    } catch (error) {
      file = Promise.reject(error);
    }
    if (file instanceof Promise) file.catch(() => undefined); // awaited in order below
    ahead.push(file);
  };
  let next = 0;
  try {
    while (next < batch.length && ahead.length < reader.concurrency) readAhead(batch[next++]);
    while (ahead.length > 0) {
      const pending = ahead.shift()!;
      const file = pending instanceof Promise ? await pending : pending;
      if (next < batch.length) readAhead(batch[next++]);
      yield file;
    }
  } finally {
    // Files read ahead but not written: close their streams.
    for (const file of ahead.splice(0)) {
      void Promise.resolve(file).then(
        (f) => ('stream' in f ? f.stream.destroy() : 'discard' in f ? f.discard() : undefined),
        () => undefined,
      );
    }
  }
}

/**
 * An entry's header written into the room left for it before its bytes: a zip local header
 * (CRC and size up front), or a tar header block (a PAX header first for a long name).
 */
function writeHeader(
  target: Buffer,
  offset: number,
  zip: ZipWriter | undefined,
  name: string,
  size: number,
  crc: number,
  mtime: Date,
): void {
  if (zip) zip.writeStoredFile(target, offset, name, crc, size);
  else if (needsPax(name, size)) tarFileHeader(name, size, mtime).copy(target, offset);
  else writeUstarHeader(target, offset, name, size, mtime);
}

/**
 * A file the reader has open, written straight into the output: its header, its bytes read into
 * the chunk, then (tar) the padding; a zip entry's CRC is computed over the bytes in place.
 */
function writeSmallFile(
  out: Output,
  zip: ZipWriter | undefined,
  name: string,
  file: { size: number; copyTo(target: Buffer, offset: number): void },
  mtime: Date,
): void {
  const room = zip ? zip.storedHeaderSize(name) : tarHeaderBytes(name);
  const padding = zip ? 0 : (TAR_BLOCK - (file.size % TAR_BLOCK)) % TAR_BLOCK;
  const { buffer, offset } = out.region(room + file.size + padding);
  const start = offset + room;
  file.copyTo(buffer, start);
  const crc = zip ? crc32(buffer.subarray(start, start + file.size)) : 0;
  writeHeader(buffer, offset, zip, name, file.size, crc, mtime);
  buffer.fill(0, start + file.size, start + file.size + padding);
}

/** For a storage without its own reader: each file through `open`, read into memory. */
function readerThroughOpen(storage: ImageStorage): ImageReader {
  return {
    concurrency: 4,
    read: async (image) => {
      const chunks: Buffer[] = [];
      for await (const chunk of await storage.open(image)) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      return { size: bytes.length, bytes };
    },
  };
}
