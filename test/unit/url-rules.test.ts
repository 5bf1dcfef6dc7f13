import { isURL } from 'class-validator';
import { STORAGE_URL_OPTIONS, WEB_URL_OPTIONS } from '../../src/entities/columns';
import { isStorageUrl, isWebUrl } from '../../src/dto/url-rules';

/**
 * The fast path of the URL rules may only make a check cheaper: for every value, the answer is
 * class-validator's isURL with the same options. The values below sit on each edge of the fast
 * path (and of isURL's rules), so a fast path that accepts too much fails here.
 */
const VALUES = [
  'https://images.example.org/b/1.jpg',
  'http://localhost',
  'http://localhost/',
  'HTTPS://Example.COM/A?b=c#d',
  'https://a.b.c.d.e/f',
  'https://example.com:8080/x',
  'https://example.com:0/x',
  'https://example.com:99999/x',
  'https://user:pw@example.com/x',
  'https://@example.com/x',
  'https://1.2.3.4/x',
  'https://999.2.3.4/x',
  'https://example.123/x',
  'https://123/x',
  'https://1-2/x',
  'https://example.com1/x',
  'https://-example.com/x',
  'https://example-.com/x',
  'https://ex--ample.com/x',
  'https://exa_mple.com/x',
  'https://_example.com/x',
  'https://example.com/x_y',
  'https://example..com/x',
  'https://example.com./x',
  'https://.example.com/x',
  `https://${'a'.repeat(63)}.com/x`,
  `https://${'a'.repeat(64)}.com/x`,
  `https://example.com/${'p'.repeat(2060)}`,
  `https://example.com/${'p'.repeat(2070)}`,
  'https://example.com/a b',
  'https://example.com/a<b',
  'https://example.com/a>b',
  'https://example.com/a\tb',
  'https://example.com/\u00e9t\u00e9',
  'https://\u00e9t\u00e9.fr/x',
  'https://example.com?x',
  'https://example.com#x',
  'https://example.com/a"b\'c`{}|\\^',
  'https://[::1]/x',
  'https:/example.com/x',
  'https:example.com',
  'https://',
  'https:///x',
  'ftp://example.com/x',
  'javascript://example.com/%0aalert(1)',
  'mailto:someone@example.com',
  's3://pixcrawler/b/1.jpg',
  'S3://Pixcrawler/b/1.jpg',
  'gs://bucket/key',
  'gs://bucket',
  'file:///var/data/1.jpg',
  'file://host/1.jpg',
  's3:///key',
  'azure://container/key',
  '//example.com/x',
  'example.com/x',
  '',
];

describe('URL rules: the same answers as isURL', () => {
  it.each(VALUES)('isWebUrl(%j) equals isURL with WEB_URL_OPTIONS', (value) => {
    expect(isWebUrl(value)).toBe(isURL(value, WEB_URL_OPTIONS));
  });

  it.each(VALUES)('isStorageUrl(%j) equals isURL with STORAGE_URL_OPTIONS', (value) => {
    expect(isStorageUrl(value)).toBe(isURL(value, STORAGE_URL_OPTIONS));
  });

  it('accepts the plain URLs crawlers hand over, and refuses a bad host', () => {
    expect(isWebUrl('https://images.example.org/b/1.jpg')).toBe(true);
    expect(isWebUrl('https://exa_mple.com/x')).toBe(false);
    expect(isStorageUrl('s3://pixcrawler/b/1.jpg')).toBe(true);
    expect(isStorageUrl('azure://container/key')).toBe(false);
  });
});
