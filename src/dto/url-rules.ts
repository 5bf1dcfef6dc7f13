import { isURL } from 'class-validator';
import { STORAGE_URL_OPTIONS, WEB_URL_OPTIONS } from '../entities/columns';

/**
 * The URL rules of `ingestImages`' rows, as cheap as a batch of hundreds of thousands of rows
 * needs: class-validator's isURL (validator.js) splits and merges options on every call, about
 * half the cost of checking a row. The rule itself stays isURL's: a fast path accepts the plain
 * URLs crawlers hand over (`https://host.name/path?query`), which isURL accepts too, and every
 * other value goes to isURL, which decides. So the fast path can only make a check cheaper,
 * never change its answer (test/unit/url-rules.test.ts holds the two to the same answers).
 *
 * What the fast path takes, and why isURL takes it with WEB_URL_OPTIONS / STORAGE_URL_OPTIONS:
 * - a scheme from the options' list followed by `//` (isURL: an explicit protocol, any case);
 * - a host of dot-separated labels of [a-z0-9-], 1-63 characters, no leading or trailing
 *   hyphen, the last not all digits (isURL's isFQDN with require_tld off, no underscores, no
 *   trailing dot); no user info, no port (left to isURL);
 * - then nothing, or `/`, `?` or `#` and printable ASCII other than `<` and `>` (isURL refuses
 *   whitespace, `<` and `>` anywhere and looks at nothing else after the host);
 * - at most 2084 characters (isURL's max_allowed_length).
 */
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const REST = '(?:[/?#][\\x21-\\x3b=\\x3f-\\x7e]*)?';
const MAX_URL_LENGTH = 2084;

function fastPath(schemes: string): RegExp {
  // The lookahead refuses an all-digit last label (isFQDN's numeric top-level domain).
  return new RegExp(`^(?:${schemes})://(?:${LABEL}\\.)*(?![0-9]+(?:[/?#]|$))${LABEL}${REST}$`, 'i');
}
const PLAIN_WEB_URL = fastPath('https?');
const PLAIN_STORAGE_URL = fastPath('https?|s3|gs');

function plain(pattern: RegExp, value: string): boolean {
  return value.length <= MAX_URL_LENGTH && pattern.test(value);
}

/** isURL(value, WEB_URL_OPTIONS): an http(s) URL. */
export function isWebUrl(value: string): boolean {
  return plain(PLAIN_WEB_URL, value) || isURL(value, WEB_URL_OPTIONS);
}

/** isURL(value, STORAGE_URL_OPTIONS): an http(s), s3, gs or file URL. */
export function isStorageUrl(value: string): boolean {
  return plain(PLAIN_STORAGE_URL, value) || isURL(value, STORAGE_URL_OPTIONS);
}
