import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { crc32, createDeflateRaw } from 'node:zlib';
import type { ValidationRules } from '../../entities/validation-job.entity';
import type { ExportFormat } from '../../entities/value-sets';
import type {
  ExportFileRow,
  ExportSnapshot,
  ImageRepository,
} from '../../repositories/image.repository';
import type { ImageFile, ImageReader, ImageStorage } from '../../storage/image-storage';
import type { ExportDestination, StoredExport } from './export-destination';
import { RecordCounter } from './record-counter';
import { ARCHIVE_MANIFEST, archiveEntryName, exportFileName } from './manifest';
import { tarEnd, tarFileHeader, tarPadding } from './tar-format';
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
 * Called every `progressEvery` rows and once at the end, and awaited: the writer waits (and
 * with it the database stream), so a listener may do I/O. Throwing stops the export.
 */
export type ExportCountsListener = (counts: ExportCounts) => void | Promise<void>;

export interface ExportWriterOptions {
  /** Reads the image files of zip and tar exports. */
  storage?: ImageStorage;
  /** Rows between progress reports. Default 1000. */
  progressEvery?: number;
  /** Neutralise spreadsheet formulas in csv cells (neutralizeCsvFormula). Default true. */
  neutralizeCsvFormulas?: boolean;
}

export interface WrittenExport extends StoredExport {
  exported: number;
}

/** Output of archives is handed on in chunks of this size. */
const CHUNK = 1 << 20;
/** Longest stretch of synchronous work (local file reads) before yielding to the event loop. */
const MAX_BUSY_MS = 10;

/**
 * The export's data path, on its own: streams one export's rows (and files) from ONE database
 * snapshot into a destination, and nothing else: claiming, heartbeats, stop detection and the
 * job's status belong to the caller, which learns of progress through `onProgress` and stops a
 * run with `signal` (or by throwing from `onProgress`).
 *
 * - csv and jsonl come straight out of PostgreSQL's COPY (jsonl produced in SQL), counted by
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
        const total = await snapshot.count();
        const report = async (exported: number) =>
          onProgress?.({ exported, total: Math.max(total, exported) });
        let counted: () => number;
        if (job.format === 'csv' || job.format === 'jsonl') {
          const counter = new ProgressCounter(job.format, every, report);
          counted = () => counter.rows;
          const rows =
            job.format === 'csv'
              ? snapshot.csv({ neutralizeFormulas: this.options.neutralizeCsvFormulas !== false })
              : snapshot.jsonl();
          await pipeline(rows, counter, upload.stream, { signal });
        } else {
          const files = { rows: 0 };
          counted = () => files.rows;
          const source = Readable.from(
            archive(job.format, snapshot, this.reader(), every, report, files),
            { objectMode: false, highWaterMark: 4 * CHUNK },
          );
          await pipeline(source, upload.stream, { signal });
        }
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

/** Passes a COPY stream through unchanged, reporting progress every `every` records. */
class ProgressCounter extends Transform {
  /** Data rows seen: csv's header line does not count. */
  rows: number;
  private reported = 0;
  private readonly counter: RecordCounter;

  constructor(
    format: 'csv' | 'jsonl',
    private readonly interval: number,
    private readonly report: (rows: number) => Promise<void>,
  ) {
    super();
    this.counter = new RecordCounter(format === 'csv');
    this.rows = format === 'csv' ? -1 : 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.consume(chunk).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    const last = Math.max(this.rows, 0);
    if (last === this.reported && last > 0) return done();
    this.report(last).then(() => done(), done);
  }

  /** Splits the chunk at each `every`-th record end, so a report's count is exact. */
  private async consume(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const target = this.reported + this.interval;
      const { records, end } = this.counter.scan(chunk, at, target - this.rows);
      this.rows += records;
      if (this.rows < target) {
        this.push(at === 0 ? chunk : chunk.subarray(at));
        return;
      }
      this.push(chunk.subarray(at, end));
      at = end;
      this.reported = this.rows;
      await this.report(this.rows);
    }
  }
}

/** Gathers small writes into chunks of about CHUNK bytes. */
class Chunker {
  private parts: Buffer[] = [];
  private size = 0;
  private busySince = performance.now();

  /** Adds bytes; returns a full chunk when there is one. */
  add(bytes: Buffer): Buffer | undefined {
    this.parts.push(bytes);
    this.size += bytes.length;
    return this.size >= CHUNK ? this.take() : undefined;
  }

  take(): Buffer | undefined {
    if (this.size === 0) return undefined;
    const chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    return chunk;
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
}

/**
 * A zip or tar archive's bytes: manifest.jsonl from the snapshot, then each image's file read
 * through `reader` (up to its concurrency in flight, written in id order).
 */
async function* archive(
  kind: 'zip' | 'tar',
  snapshot: ExportSnapshot,
  reader: ImageReader,
  every: number,
  report: (rows: number) => Promise<void>,
  files: { rows: number },
): AsyncGenerator<Buffer> {
  const mtime = new Date();
  const zip = kind === 'zip' ? new ZipWriter(mtime) : undefined;
  const out = new Chunker();
  function* emit(bytes: Buffer): Generator<Buffer> {
    const chunk = out.add(bytes);
    if (chunk) yield chunk;
  }

  // The manifest: tar needs its size before its bytes (the snapshot sums the lines in SQL);
  // zip deflates it as it streams and puts size and CRC after it.
  if (zip) {
    yield* emit(zip.beginStreamed(ARCHIVE_MANIFEST, 'deflate'));
    let crc = 0;
    let size = 0;
    let compressed = 0;
    const deflate = createDeflateRaw({ level: 6 });
    const feeding = pipeline(
      snapshot.jsonl(),
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          crc = crc32(chunk, crc);
          size += chunk.length;
          done(null, chunk);
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
    const size = await snapshot.jsonlBytes();
    yield* emit(tarFileHeader(ARCHIVE_MANIFEST, size, mtime));
    let written = 0;
    for await (const chunk of snapshot.jsonl()) {
      written += (chunk as Buffer).length;
      yield* emit(chunk as Buffer);
    }
    if (written !== size) {
      throw new Error(`the manifest has ${written} bytes, the database counted ${size}`);
    }
    yield* emit(tarPadding(size));
  }

  // The files, in id order, read ahead up to the reader's concurrency.
  const ahead: Array<{ image: ExportFileRow; file: ImageFile | Promise<ImageFile> }> = [];
  const readAhead = (image: ExportFileRow) => {
    let file: ImageFile | Promise<ImageFile>;
    try {
      file = reader.read(image);
    } catch (error) {
      file = Promise.reject(error);
    }
    if (file instanceof Promise) file.catch(() => undefined); // awaited in order below
    ahead.push({ image, file });
  };
  try {
    for await (const batch of snapshot.files(1000)) {
      let next = 0;
      while (next < batch.length && ahead.length < reader.concurrency) readAhead(batch[next++]);
      while (ahead.length > 0) {
        const { image, file: pending } = ahead.shift()!;
        const file = pending instanceof Promise ? await pending : pending;
        if (next < batch.length) readAhead(batch[next++]);
        const name = archiveEntryName(image);
        if ('bytes' in file) {
          if (zip) yield* emit(zip.storedFile(name, crc32(file.bytes), file.size));
          else yield* emit(tarFileHeader(name, file.size, mtime));
          yield* emit(file.bytes);
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
          if (zip) yield* emit(zip.endStreamed(crc, size, size));
        }
        if (!zip) yield* emit(tarPadding(file.size));
        files.rows++;
        if (files.rows % every === 0) {
          const chunk = out.take();
          if (chunk) yield chunk;
          await report(files.rows);
          out.rest();
        } else if (out.shouldYield()) {
          await yieldToEventLoop();
        }
      }
    }
  } finally {
    // Files read ahead but not written: close their streams.
    for (const { file } of ahead.splice(0)) {
      void Promise.resolve(file).then(
        (f) => ('stream' in f ? f.stream.destroy() : undefined),
        () => undefined,
      );
    }
  }
  yield* emit(zip ? zip.finish() : tarEnd());
  const last = out.take();
  if (last) yield last;
  if (files.rows % every !== 0 || files.rows === 0) await report(files.rows);
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
