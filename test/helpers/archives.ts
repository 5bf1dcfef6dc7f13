import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';

/**
 * A tar archive's entries in archive order, read with an independent reader (tar-stream), from
 * its bytes or from a file.
 */
export async function tarEntries(archive: Buffer | string): Promise<Array<[string, Buffer]>> {
  const extract = tar.extract();
  const entries: Array<[string, Buffer]> = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push([entry.header.name, Buffer.concat(chunks)]);
    }
  })();
  const source = typeof archive === 'string' ? createReadStream(archive) : Readable.from([archive]);
  await pipeline(source, extract);
  await reading;
  return entries;
}
