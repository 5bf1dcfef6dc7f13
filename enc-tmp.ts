import { CopyBinaryToJsonl } from './src/repositories/manifest-jsonl';
function binaryCopy(rows: Array<Array<number | string | null>>): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const row of rows) {
    const count = Buffer.alloc(2); count.writeInt16BE(row.length); parts.push(count);
    for (const value of row) {
      const length = Buffer.alloc(4);
      if (value === null) { length.writeInt32BE(-1); parts.push(length); }
      else if (typeof value === 'number') { length.writeInt32BE(4); const i = Buffer.alloc(4); i.writeInt32BE(value); parts.push(length, i); }
      else { const t = Buffer.from(value); length.writeInt32BE(t.length); parts.push(length, t); }
    }
  }
  const tr = Buffer.alloc(2); tr.writeInt16BE(-1);
  return Buffer.concat([...parts, tr]);
}
const rows = Array.from({ length: 200000 }, (_, n) => [n + 1, 7, `https://images.example.org/b/${n}.jpg`, `img_${n}.jpg`, `s3://pixcrawler/b/${n}.jpg`, 640, 480, 50000 + n, 'jpg']);
const bytes = binaryCopy(rows);
const chunks: Buffer[] = []; for (let at = 0; at < bytes.length; at += 65536) chunks.push(bytes.subarray(at, at + 65536));
for (let k = 0; k < 5; k++) {
  const c = new CopyBinaryToJsonl(true);
  const t = performance.now();
  for (const ch of chunks) (c as any)._transform(ch, 'buffer', () => {});
  console.log('200k rows', (performance.now() - t).toFixed(1), 'ms', c.rows);
}
