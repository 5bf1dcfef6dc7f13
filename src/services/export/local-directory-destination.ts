import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import type { ExportDestination, ExportUpload, StoredExport } from './export-destination';

export interface LocalDirectoryDestinationOptions {
  /** download_url = `<base>/<file name>`; default a file:// URL of the file. */
  downloadBaseUrl?: string;
}

const ignoreMissing = (error: NodeJS.ErrnoException) => {
  if (error.code !== 'ENOENT') throw error;
};

/**
 * Export files in a local directory (created when missing). A file is written as
 * `<name>.part` and renamed when complete, so a download never sees half a file.
 */
export class LocalDirectoryDestination implements ExportDestination {
  readonly directory: string;

  constructor(
    directory: string,
    private readonly options: LocalDirectoryDestinationOptions = {},
  ) {
    this.directory = path.resolve(directory);
  }

  locate(fileName: string): string {
    return path.join(this.directory, fileName);
  }

  async begin(fileName: string): Promise<ExportUpload> {
    const finalPath = this.locate(fileName);
    const partPath = `${finalPath}.part`;
    await mkdir(this.directory, { recursive: true });
    // A large buffer lets the writer run ahead of the disk by a few chunks.
    const stream = createWriteStream(partPath, { highWaterMark: 8 * 1024 * 1024 });
    const closed = finished(stream);
    closed.catch(() => undefined); // awaited by commit; abort does not care
    return {
      stream,
      releasesChunks: true, // fs.WriteStream: a chunk's callback runs after its write(2)
      commit: async (): Promise<StoredExport> => {
        await closed;
        await rename(partPath, finalPath);
        const { size } = await stat(finalPath);
        return { downloadUrl: this.downloadUrl(finalPath), location: finalPath, fileSize: size };
      },
      abort: async () => {
        stream.destroy();
        await closed.catch(() => undefined);
        await unlink(partPath).catch(ignoreMissing);
        await unlink(finalPath).catch(ignoreMissing);
      },
    };
  }

  async remove(fileName: string): Promise<void> {
    await unlink(this.locate(fileName)).catch(ignoreMissing);
  }

  async list(): Promise<string[]> {
    return readdir(this.directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
  }

  private downloadUrl(filePath: string): string {
    const base = this.options.downloadBaseUrl;
    if (!base) return pathToFileURL(filePath).href;
    return new URL(path.basename(filePath), base.endsWith('/') ? base : `${base}/`).href;
  }
}
